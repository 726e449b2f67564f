#!/usr/bin/env bash
# Model-checks the crate's concurrent protocols with loom (see tests/loom.rs).
# Only the library package: under --cfg loom, other tests would run loom code outside
# a model. A separate target dir keeps the normal build cache intact.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom -C debug-assertions"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
exec cargo test --release -p recycle-pool --test loom --target-dir target/loom "$@"
