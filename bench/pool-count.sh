#!/usr/bin/env bash
# recycle_pool::Pool beside its peers, outside criterion: the bench binary's `count` mode
# (bench/pool/benches/pool.rs), every pool in every scenario, ROUNDS interleaved rounds
# (each round runs every pair once, so a slow spell of a shared machine touches them
# all alike), then callgrind on the same binary for the instructions per object. Prints
# one markdown table: median ns per object over the rounds (min–max) and instructions.
#
#   bench/pool-count.sh                  # 15 rounds of 4 M objects per pair
#   ROUNDS=31 OBJECTS=8000000 bench/pool-count.sh
#   POOLS="recycle lockfree-object-pool" SCENARIOS="1thread hold8" bench/pool-count.sh
#
# Writes bench/results/pool-count.csv (scenario,impl,ns: one row per run, so
# `bench/plot.sh --pool` plots its medians) and bench/results/pool-count.md. Hold the
# build lock for the whole run (`flock /work/.cargo.lock bench/pool-count.sh`) on a
# shared machine, so that nothing compiles beside it.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_tools cargo python3 valgrind

ROUNDS=${ROUNDS:-15}
OBJECTS=${OBJECTS:-4000000}
SCENARIOS=${SCENARIOS:-1thread hold8 2threads 512pools}
POOLS=${POOLS:-fresh mutex thread_local thread_local_words thread_local_array recycle \
lockfree-object-pool object-pool opool opool-local sharded-slab poolshark}
CALLGRIND_OBJECTS=${CALLGRIND_OBJECTS:-102400}

log "cargo bench -p pool-bench --bench pool --features comparisons --no-run"
BIN=$(cd "$ROOT" && cargo bench -p pool-bench --bench pool --features comparisons --no-run \
    --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pool" and m.get("executable"):
        print(m["executable"])')
[ -x "$BIN" ] || die "no bench binary built"

# Objects per iteration of each scenario, and whether a pool has the scenario.
per_iter() { case $1 in hold8) echo 8 ;; 512pools) echo 512 ;; *) echo 1 ;; esac; }
has() { # pool scenario
    case $2 in
        512pools) case $1 in thread_local | thread_local_words | poolshark | opool-local) return 1 ;; esac ;;
        2threads) [ "$1" != opool-local ] || return 1 ;;
    esac
}

CSV=$RESULTS/pool-count.csv
MD=$RESULTS/pool-count.md
echo "scenario,impl,ns" >"$CSV"
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for scenario in $SCENARIOS; do
        iters=$((OBJECTS / $(per_iter "$scenario")))
        for pool in $POOLS; do
            has "$pool" "$scenario" || continue
            ns=$("$BIN" count "$scenario" "$pool" "$iters" | sed -n 's/^ns per object: //p')
            echo "$scenario,$pool,$ns" >>"$CSV"
        done
    done
done

INSTR=$TMP/instructions.csv
echo "scenario,impl,instructions" >"$INSTR"
log "callgrind, $CALLGRIND_OBJECTS objects per pair"
for scenario in $SCENARIOS; do
    iters=$((CALLGRIND_OBJECTS / $(per_iter "$scenario")))
    for pool in $POOLS; do
        has "$pool" "$scenario" || continue
        out=$(valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=/dev/null \
            "$BIN" count "$scenario" "$pool" "$iters" 2>&1)
        ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out")
        objects=$(sed -n 's/^objects: //p' <<<"$out")
        echo "$scenario,$pool,$(python3 -c "print(f'{$ir / $objects:.1f}')")" >>"$INSTR"
    done
done

about="$(date -u +%F), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores;\
 $(rustc --version); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)');\
 $ROUNDS rounds of $OBJECTS objects per pair; callgrind on $CALLGRIND_OBJECTS"

python3 - "$CSV" "$INSTR" "$MD" "$about" <<'EOF'
"""One table: median ns per object over the rounds (min-max), and instructions."""
import csv
import statistics
import sys

csv_path, instr_path, md_path, about = sys.argv[1:]
runs, order_s, order_i = {}, [], []
for row in csv.DictReader(open(csv_path)):
    key = (row["scenario"], row["impl"])
    runs.setdefault(key, []).append(float(row["ns"]))
    if row["scenario"] not in order_s:
        order_s.append(row["scenario"])
    if row["impl"] not in order_i:
        order_i.append(row["impl"])
instr = {(r["scenario"], r["impl"]): r["instructions"] for r in csv.DictReader(open(instr_path))}
lines = [
    f"Median ns per object over the rounds (min–max), and callgrind instructions per "
    f"object. One run: {about}.",
    "",
    "| pool | " + " | ".join(order_s) + " |",
    "| --- |" + " ---: |" * len(order_s),
]
for impl in order_i:
    cells = []
    for scenario in order_s:
        v = runs.get((scenario, impl))
        if not v:
            cells.append("–")
            continue
        cells.append(
            f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f}); "
            f"{instr.get((scenario, impl), '?')} instr"
        )
    lines.append(f"| {impl} | " + " | ".join(cells) + " |")
open(md_path, "w").write("\n".join(lines) + "\n")
EOF

cat "$MD"
