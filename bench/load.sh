#!/usr/bin/env bash
# Load benchmark: demo-server beside hyper, nginx and Go, hello servers and proxies,
# on loopback, the server pinned to core 0 and wrk to core 1. See bench/README.md.
#
#   bench/load.sh                        # 2 rounds of 10 s per server and shape
#   ROUNDS=3 DURATION=30s bench/load.sh
#   DURATION=2s ROUNDS=1 KINDS=hello SHAPES=plain ONLY="demo nginx" bench/load.sh
#
# Environment: ROUNDS (2), DURATION (10s), WARMUP (1s, unmeasured; 0 skips it),
# CONNECTIONS (64), DEPTH (16 requests per write when pipelined), KINDS ("hello
# proxy"), SHAPES ("plain pipelined"), ONLY (server names to keep; default all).
# Installs wrk, nginx and Go from apt when missing; builds demo-server and the peers.
# Writes bench/results/load-STAMP.csv (one row per measurement), .env (machine and
# versions) and .wrk.txt (wrk's own output), and prints medians and ranges.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
KINDS=${KINDS:-hello proxy}
SHAPES=${SHAPES:-plain pipelined}
ONLY=${ONLY:-}

[ "$(nproc)" -ge 2 ] || die "needs 2 cores: the server on core 0, wrk on core 1"
ensure_tools cargo python3 taskset pgrep wrk
raise_nofile
build_demo
build_peers

CSV=$RESULTS/load-$STAMP.csv
WRK_LOG=$RESULTS/load-$STAMP.wrk.txt
write_env "$RESULTS/load-$STAMP.env"
echo "date,round,kind,shape,server,requests,seconds,rps,p50_us,p99_us,cpu_ticks,cpu_us_per_req,errors,user_ticks,user_us_per_req" >"$CSV"
CLK_TCK=$(getconf CLK_TCK)
FAILED=()

# servers KIND: the servers of that kind, less those ONLY leaves out.
servers() {
    local all name
    if [ "$1" = hello ]; then all="${HELLO_SERVERS[*]}"; else all=$(proxy_servers); fi
    for name in $all; do
        if [ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]]; then echo "$name"; fi
    done
}

# run_wrk DURATION DEPTH: wrk on core 1 against $PORT; its output in $TMP/wrk.out.
run_wrk() {
    run_tracked taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$1" --latency -s "$BENCH/wrk.lua" \
        "http://127.0.0.1:$PORT/" -- "$2" >"$TMP/wrk.out" 2>&1
}

# measure ROUND KIND SHAPE SERVER: one measurement, one CSV row.
measure() {
    local round=$1 kind=$2 shape=$3 name=$4 depth=1
    [ "$shape" = plain ] || depth=$DEPTH
    if [ "$kind" = proxy ]; then ensure_backend; fi
    if ! start_server "$name" "$name-$shape-$round" 0; then
        FAILED+=("$kind $shape $name (round $round): did not start")
        return
    fi
    local pid=$STARTED before after user_before user_after out line
    if [ "$WARMUP" != 0 ]; then run_wrk "$WARMUP" "$depth" || true; fi
    read -r before user_before <<<"$(cpu_ticks "$pid")"
    if ! run_wrk "$DURATION" "$depth"; then
        FAILED+=("$kind $shape $name (round $round): wrk failed: $(cat "$TMP/wrk.out")")
        stop_pid "$pid"
        return
    fi
    read -r after user_after <<<"$(cpu_ticks "$pid")"
    out=$(cat "$TMP/wrk.out")
    if ! alive "$pid"; then FAILED+=("$kind $shape $name (round $round): server died under load"); fi
    stop_pid "$pid"
    printf '### round %s %s %s %s\n%s\n\n' "$round" "$kind" "$shape" "$name" "$out" >>"$WRK_LOG"
    line=$(grep '^BENCH ' <<<"$out") || {
        FAILED+=("$kind $shape $name (round $round): no BENCH line from wrk")
        return
    }
    # requests=N duration_us=N p50_us=N p99_us=N errors=N
    local requests duration_us p50_us p99_us errors kv
    for kv in ${line#BENCH }; do
        case ${kv%%=*} in
        requests) requests=${kv#*=} ;;
        duration_us) duration_us=${kv#*=} ;;
        p50_us) p50_us=${kv#*=} ;;
        p99_us) p99_us=${kv#*=} ;;
        errors) errors=${kv#*=} ;;
        esac
    done
    if [ "$requests" -eq 0 ]; then
        FAILED+=("$kind $shape $name (round $round): no request completed")
        return
    fi
    [ "$errors" -eq 0 ] || FAILED+=("$kind $shape $name (round $round): $errors wrk errors (see $WRK_LOG)")
    # wrk "corrects" its latency histogram for coordinated omission assuming one request
    # in flight per connection; pipelined, that invents samples below the minimum and
    # its percentiles read 0 or nonsense (see README.md). Leave them out; and a 0 from
    # the plain shape is the same artifact.
    if [ "$shape" != plain ]; then p50_us='' p99_us=''; fi
    if [ "$p50_us" = 0 ]; then p50_us=; fi
    if [ "$p99_us" = 0 ]; then p99_us=; fi
    local ticks=$((after - before)) user_ticks=$((user_after - user_before)) row
    row=$(awk -v r="$requests" -v d="$duration_us" -v t="$ticks" -v u="$user_ticks" -v hz="$CLK_TCK" 'BEGIN {
        printf "%d,%.3f,%.0f,%d", r, d / 1e6, r / (d / 1e6), t
        printf ",%.3f,%.3f", t * 1e6 / hz / r, u * 1e6 / hz / r }')
    IFS=, read -r _ seconds rps _ cpu user <<<"$row"
    echo "$(date -u +%FT%TZ),$round,$kind,$shape,$name,$requests,$seconds,$rps,$p50_us,$p99_us,$ticks,$cpu,$errors,$user_ticks,$user" >>"$CSV"
    log "round $round $kind $shape $name: $rps req/s, p50 ${p50_us:-?} us, p99 ${p99_us:-?} us, $cpu us CPU/request"
}

for ((round = 1; round <= ROUNDS; round++)); do
    for kind in $KINDS; do
        for shape in $SHAPES; do
            for name in $(servers "$kind"); do
                measure "$round" "$kind" "$shape" "$name"
            done
        done
    done
done
if [ -n "$BACKEND_PID" ]; then stop_pid "$BACKEND_PID"; fi

echo
echo "Raw results: ${CSV#"$ROOT"/} (machine and versions: load-$STAMP.env, wrk output: load-$STAMP.wrk.txt)"
echo
python3 "$BENCH/summarize.py" load "$CSV"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo
    echo "Problems:"
    printf -- '- %s\n' "${FAILED[@]}"
    exit 1
fi
