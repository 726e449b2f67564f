#!/usr/bin/env bash
# Memory per idle keep-alive connection: demo-server (serve and proxy) beside hyper,
# nginx and Go. See bench/README.md.
#
#   bench/idle-conns.sh                  # N = 5000 and 15000 connections
#   NS=500 ONLY="demo nginx" bench/idle-conns.sh
#
# For each server and N: start the server, read its VmRSS, open N connections with
# bench/idle_client.py (one `GET /` each, response read whole, then left open and
# idle), wait SETTLE seconds, read VmRSS again, and report (after - before) / N bytes.
# Environment: NS ("5000 15000"), ROUNDS (1), SETTLE (1), ONLY (server names to
# keep: demo demo-proxy hyper nginx go). Writes bench/results/idle-STAMP.csv and .env
# and prints a table.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=${NS:-5000 15000}
ROUNDS=${ROUNDS:-1}
SETTLE=${SETTLE:-1}
ONLY=${ONLY:-}

ensure_tools cargo python3 taskset pgrep
raise_nofile
max_n=0
for n in $NS; do if ((n > max_n)); then max_n=$n; fi; done
[ "$(ulimit -n)" = unlimited ] || (($(ulimit -n) >= max_n + 64)) ||
    die "ulimit -n is $(ulimit -n) (hard limit), below $max_n connections + 64"
build_demo
build_peers

# The same demo-server settings at every N: room for every connection, and no idle
# timeout while they are held.
DEMO_EXTRA=("--max-connections=$((max_n > 19000 ? max_n + 1000 : 20000))" --idle-timeout=600s)

CSV=$RESULTS/idle-$STAMP.csv
write_env "$RESULTS/idle-$STAMP.env"
echo "date,round,server,n,rss_before_kib,rss_after_kib,bytes_per_conn" >"$CSV"
FAILED=()

SERVERS=(demo)
if [ -n "$DEMO_PROXY" ]; then SERVERS+=(demo-proxy); fi
SERVERS+=(hyper nginx go)

# measure ROUND SERVER N: one CSV row.
measure() {
    local round=$1 name=$2 n=$3
    if [ "$name" = demo-proxy ]; then ensure_backend; fi
    if ! start_server "$name" "$name-$n-$round" 0; then
        FAILED+=("$name N=$n (round $round): did not start")
        return
    fi
    local pid=$STARTED before after line
    sleep "$SETTLE"
    before=$(rss_kib "$pid")
    coproc CLIENT { exec taskset -c 1 python3 "$BENCH/idle_client.py" --port "$PORT" --n "$n"; }
    local client=$CLIENT_PID out=${CLIENT[0]} in=${CLIENT[1]}
    PIDS+=("$client")
    if ! IFS= read -r -t 600 line <&"$out" || [ "$line" != "READY $n" ]; then
        FAILED+=("$name N=$n (round $round): client: ${line:-no answer}")
        stop_pid "$client"
        stop_pid "$pid"
        return
    fi
    sleep "$SETTLE"
    after=$(rss_kib "$pid")
    echo release >&"$in"
    IFS= read -r -t 60 line <&"$out" || line="no answer"
    [ "$line" = DONE ] || FAILED+=("$name N=$n (round $round): client: $line")
    stop_pid "$client"
    alive "$pid" || FAILED+=("$name N=$n (round $round): server died")
    stop_pid "$pid"
    local bytes=$(((after - before) * 1024 / n))
    echo "$(date -u +%FT%TZ),$round,$name,$n,$before,$after,$bytes" >>"$CSV"
    log "round $round $name N=$n: VmRSS $before -> $after KiB: $bytes bytes per idle connection"
}

for ((round = 1; round <= ROUNDS; round++)); do
    for n in $NS; do
        for name in "${SERVERS[@]}"; do
            if [ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]]; then measure "$round" "$name" "$n"; fi
        done
    done
done
if [ -n "$BACKEND_PID" ]; then stop_pid "$BACKEND_PID"; fi

echo
echo "Raw results: ${CSV#"$ROOT"/} (machine and versions: idle-$STAMP.env)"
echo
python3 "$BENCH/summarize.py" idle "$CSV"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo
    echo "Problems:"
    printf -- '- %s\n' "${FAILED[@]}"
    exit 1
fi
