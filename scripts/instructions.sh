#!/usr/bin/env bash
# Instructions per op of each fake-connection scenario (benches/instructions.rs), by
# callgrind: two runs per scenario, 1,000 and 11,000 ops; the difference of the totals
# over 10,000 ops is the cost of one op, setup cancelled out. Run it under the lock.
# Usage: scripts/instructions.sh [target-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-target}"
cargo bench -p demo-server --bench instructions --no-run --target-dir "$target" 2>/dev/null
bin=$(ls -t "$target"/release/deps/instructions-* | grep -v '\.d$' | head -1)
total() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for scenario in no_keep_alive keep_alive_lite proxy; do
    small=$(total "$scenario" 1000)
    large=$(total "$scenario" 11000)
    echo "$scenario: $(( (large - small) / 10000 )) instructions/op"
done
