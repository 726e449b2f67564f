#!/usr/bin/env bash
# recycle_pool::Pool beside its peer crates: runs bench/pool/benches/pool.rs with `--features
# comparisons` (criterion), then prints, from that one run, the median ns per object
# as CSV and as a markdown table with the ratio to the stall-free `thread_local!` stack
# (and, for the 512pools scenario, to the same pool's 1thread).
#
#   bench/pool-peers.sh                  # criterion's normal settings (some 6 minutes)
#   QUICK=1 bench/pool-peers.sh          # 1 s warm-up, 1 s measurement (some 3 minutes):
#                                        # checks that every variant runs; numbers mean little
#   CRITERION_ARGS='--sample-size 200' bench/pool-peers.sh   # more criterion options
#
# Writes bench/results/pool.csv (columns scenario,impl,ns; bench/plot.sh draws it) and
# bench/results/pool.md (the table). Reads criterion's target/criterion/pool_*/*/new/
# {benchmark,estimates}.json, only those this run wrote. Run it on an otherwise idle
# machine: a compile on another core changes the numbers.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_tools cargo python3

ARGS=()
if [ -n "${QUICK:-}" ]; then ARGS+=(--warm-up-time 1 --measurement-time 1); fi
# shellcheck disable=SC2206 # CRITERION_ARGS is split into words on purpose
ARGS+=(${CRITERION_ARGS:-})

TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
CSV=$RESULTS/pool.csv
MD=$RESULTS/pool.md

touch "$TMP/started" # results older than this are from earlier runs
log "cargo bench --bench pool --features comparisons -- ${ARGS[*]} (criterion's output on stderr)"
(cd "$ROOT" && cargo bench -p pool-bench --bench pool --features comparisons -- "${ARGS[@]}") >&2

peers=$(grep -A1 -E '^name = "(lockfree-object-pool|object-pool|opool|sharded-slab|poolshark)"$' "$ROOT/Cargo.lock" |
    paste -sd' ' | sed -E 's/name = "([^"]*)" version = "([^"]*)"/\1 \2,/g; s/ -- / /g; s/,$//')
about="$(date -u +%F), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores;\
 $(rustc --version); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)');\
 criterion ${ARGS[*]:-defaults}; peers: $peers"

python3 - "$TARGET/criterion" "$TMP/started" "$CSV" "$MD" "$about" <<'EOF'
"""Median ns per object of each pool/<scenario>/<impl> benchmark that this run wrote."""
import csv
import glob
import json
import os
import sys

root, marker, csv_path, md_path, about = sys.argv[1:]
started = os.path.getmtime(marker)
found = []  # (mtime, scenario, impl, ns per object)
for path in glob.glob(os.path.join(root, "pool_*", "*", "new", "benchmark.json")):
    estimates = os.path.join(os.path.dirname(path), "estimates.json")
    if not os.path.exists(estimates) or os.path.getmtime(estimates) < started:
        continue
    with open(path) as f:
        bench = json.load(f)
    with open(estimates) as f:
        median = json.load(f)["median"]["point_estimate"]  # ns per iteration
    objects = (bench.get("throughput") or {}).get("Elements", 1)  # objects per iteration
    scenario = bench["group_id"].split("/", 1)[1]
    found.append((os.path.getmtime(estimates), scenario, bench["value_str"], median / objects))
if not found:
    sys.exit(f"no pool benchmark results newer than this run's start under {root}")

found.sort()  # the order criterion ran them in
scenarios, impls, ns = [], [], {}
for _, scenario, impl, value in found:
    if scenario not in scenarios:
        scenarios.append(scenario)
    if impl not in impls:
        impls.append(impl)
    ns[scenario, impl] = value

with open(csv_path, "w", newline="") as f:
    out = csv.writer(f, lineterminator="\n")
    out.writerow(["scenario", "impl", "ns"])
    for scenario in scenarios:
        for impl in impls:
            if (scenario, impl) in ns:
                out.writerow([scenario, impl, f"{ns[scenario, impl]:.2f}"])

BASE = "thread_local_words"
MANY, ONE = "512pools", "1thread"
lines = [
    f"Median ns per object (get, write a byte, return); in brackets the ratio to the "
    f"`{BASE}` row (a `thread_local!` stack that reads an object back by words, so "
    f"that a get right after a return does not stall on store forwarding; the "
    f"`thread_local` row is the same stack as usually written, which does), and in the "
    f"`{MANY}` column the ratio to the same pool's `{ONE}` (1.00x: the cost does not "
    f"grow with the number of pools). One run: {about}.",
    "",
    "| pool | " + " | ".join(scenarios) + " |",
    "| --- |" + " ---: |" * len(scenarios),
]
for impl in impls:
    cells = []
    for scenario in scenarios:
        value = ns.get((scenario, impl))
        base = ns.get((ONE, impl)) if scenario == MANY else ns.get((scenario, BASE))
        if value is None:
            cells.append("–")
        elif base:
            cells.append(f"{value:.1f} ({value / base:.2f}x)")
        else:
            cells.append(f"{value:.1f}")
    lines.append(f"| {impl} | " + " | ".join(cells) + " |")
with open(md_path, "w") as f:
    f.write("\n".join(lines) + "\n")
EOF

echo "# $CSV"
cat "$CSV"
echo
cat "$MD"
