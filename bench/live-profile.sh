#!/usr/bin/env bash
# The live server's user-space instructions and system calls per request: demo-server
# (`proxy` in front of a `serve` backend, or `serve` alone) under callgrind, then under
# `strace -c`, each driven by wrk for a bounded time with keep-alive connections.
#
#   bench/live-profile.sh                       # proxy, 8 connections, 3 s each
#   MODE=serve CONNECTIONS=16 bench/live-profile.sh
#   DEMO_SERVER=target/release/demo-server bench/live-profile.sh
#
# Environment: MODE (proxy | serve), CONNECTIONS (8), DURATION (3s, each of the
# callgrind and the strace runs), DEPTH (1; > 1 pipelines, as load.sh does), OUT (a
# directory for callgrind.out and strace.txt; a temporary one by default),
# DEMO_SERVER (a binary to run; default: built in target/prof with line tables, so
# callgrind can name inlined code).
#
# Callgrind counts only while wrk runs (`--instr-atstart=no`, switched on after a
# warm-up with `callgrind_control -i on`, dumped with `-d` when wrk is done): instructions per request =
# the instructions counted / the responses wrk completed. The few connections wrk
# opens are accepted inside the window; at thousands of requests each, their cost is
# a fraction of an instruction per request. strace attaches after a warm-up the same
# way. The server runs on core 0, the backend and wrk on core 1, ports 28080 (server)
# and 28081 (backend), away from load.sh's.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${MODE:-proxy}
CONNECTIONS=${CONNECTIONS:-8}
DURATION=${DURATION:-3s}
DEPTH=${DEPTH:-1}
PORT=28080
BACKEND=28081
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

if [ -z "${DEMO_SERVER:-}" ]; then
    (cd "$ROOT" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/prof \
        cargo build --release -q -p demo-server)
    DEMO_SERVER=$ROOT/target/prof/release/demo-server
fi

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_up() {
    local i
    for i in $(seq 1 200); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "server did not answer on $PORT" >&2
    return 1
}

run_wrk() { # DURATION: prints the number of responses
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$1" -s "$ROOT/bench/wrk.lua" \
        "http://127.0.0.1:$PORT/" -- "$DEPTH" >"$OUT/wrk.out" 2>&1
    grep '^BENCH ' "$OUT/wrk.out" | sed 's/.*requests=\([0-9]*\).*/\1/'
}

server_cmd=("$DEMO_SERVER" "$MODE" --addr "127.0.0.1:$PORT" --threads 1)
if [ "$MODE" = proxy ]; then
    taskset -c 1 "$DEMO_SERVER" serve --addr "127.0.0.1:$BACKEND" --threads 1 >"$OUT/backend.log" 2>&1 &
    PIDS+=($!)
    server_cmd+=(--upstream "127.0.0.1:$BACKEND")
fi

# 1. callgrind
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT/callgrind.out" "${server_cmd[@]}" >"$OUT/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_up
run_wrk 1s >/dev/null
callgrind_control -i on "$SERVER" >/dev/null
requests=$(run_wrk "$DURATION")
callgrind_control -d "$SERVER" >/dev/null
callgrind_control -i off "$SERVER" >/dev/null
kill -TERM "$SERVER"
wait "$SERVER" || true
dump=$(ls "$OUT"/callgrind.out.* | head -1)
mv "$dump" "$OUT/callgrind.out"
total=$(awk '/^summary:/ { print $2; exit }' "$OUT/callgrind.out")
echo "callgrind: $requests requests, $total instructions, $(awk -v t="$total" -v r="$requests" 'BEGIN { printf "%.0f", t / r }') per request ($OUT/callgrind.out)"

# 2. strace -c, attached after a warm-up
taskset -c 0 "${server_cmd[@]}" >"$OUT/server2.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_up
run_wrk 1s >/dev/null
strace -c -f -q -p "$SERVER" -o "$OUT/strace.txt" &
STRACE=$!
sleep 0.5
requests=$(run_wrk "$DURATION")
kill -INT "$STRACE"
wait "$STRACE" || true
kill -TERM "$SERVER"
wait "$SERVER" || true
echo "strace: $requests requests"
awk -v r="$requests" '
    /^[ %]*[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {
        calls = $4; name = $NF; errors = (NF == 6) ? $5 : 0
        printf "  %-16s %8.3f per request (%d calls, %d errors)\n", name, calls / r, calls, errors
    }
    / total$/ && NF == 5 { printf "  %-16s %8.3f per request\n", "total", $3 / r }' "$OUT/strace.txt"
