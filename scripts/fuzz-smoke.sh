#!/usr/bin/env bash
# Builds every fuzz target and runs each for FUZZ_SECONDS (default 30) seconds, starting
# from the committed corpus. New inputs go to a temporary directory, so the committed
# corpus is left as it is. Installs cargo-fuzz if it is missing. Works on stable Rust
# (`-s none`: no sanitizer, which would need nightly flags).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# fuzz/Cargo.lock is committed: it must already say what a build resolves, or every
# fuzz build would rewrite it.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build -s none
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    echo "--- fuzz $target for ${seconds}s"
    log="$scratch/$target.log"
    if ! cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed; the reproducer is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
done
