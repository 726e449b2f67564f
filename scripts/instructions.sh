#!/usr/bin/env bash
# User-space instructions per op of the in-memory scenarios of
# demo-server/benches/instructions.rs, by callgrind: two runs per scenario, the
# difference of the totals over the difference of the op counts is the cost of one
# op, setup cancelled out (1,000 and 11,000 ops; 10 and 30 for a 16 KiB head, 1 and
# 3 for a 1 MiB one). Run it under the lock.
# Usage: scripts/instructions.sh [-t target-dir] [scenario...]   (default: all;
# `... --bench instructions -- --list` lists them)
set -euo pipefail
cd "$(dirname "$0")/.."
target=target
if [[ "${1:-}" == -t ]]; then target=$2; shift 2; fi
cargo bench -p demo-server --bench instructions --no-run --target-dir "$target" 2>/dev/null
bin=$(ls -t "$target"/release/deps/instructions-* | grep -v '\.d$' | head -1)
total() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
if [[ $# -eq 0 ]]; then
    mapfile -t scenarios < <("$bin" --list)
else
    scenarios=("$@")
fi
for scenario in "${scenarios[@]}"; do
    case $scenario in
        *16k) small=10 large=30 ;;
        *1m) small=1 large=3 ;;
        *) small=1000 large=11000 ;;
    esac
    a=$(total "$scenario" "$small")
    b=$(total "$scenario" "$large")
    echo "$scenario: $(( (b - a) / (large - small) )) instructions/op"
done
