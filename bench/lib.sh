# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this file
# Common parts of bench/load.sh and bench/idle-conns.sh (sourced, not run): installing
# the tools, building demo-server and the peers, starting and stopping servers, and
# reading a server's CPU time and memory from /proc.

set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD=$BENCH/.build     # gitignored: peer binaries, their cargo target dir, Go caches
RESULTS=$BENCH/results  # gitignored: raw CSVs of every run
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TMP=$(mktemp -d /tmp/recycle-bench.XXXXXX) # nginx prefixes and server logs
chmod 755 "$TMP"                            # nginx workers run as nobody
mkdir -p "$BUILD" "$RESULTS"

# Loopback ports of the benchmarks.
PORT=18080       # the server under test (hello) or the proxy under test
BACKEND=18081    # the backend behind every proxy
ADMIN=18090      # demo-server proxy's --admin listener

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------
# Tools, installed only when missing.

APT_UPDATED=
apt_install() { # apt_install PACKAGE...: `apt-get update` once per script, then install
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    # RUNLEVEL=1: a package's service (nginx's) is installed, not started.
    $sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >&2
}

have() { command -v "$1" >/dev/null 2>&1; }

NGINX=
find_nginx() {
    NGINX=$(command -v nginx 2>/dev/null || true)
    [ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
    [ -n "$NGINX" ]
}

# ensure_tools TOOL...: wrk, nginx, go, gnuplot, python3, valgrind, cargo (cargo is not
# installed).
ensure_tools() {
    local tool
    for tool in "$@"; do
        case $tool in
        wrk) have wrk || apt_install wrk ;;
        nginx) find_nginx || apt_install nginx-light || apt_install nginx ;;
        go) have go || apt_install golang-go ;;
        gnuplot) have gnuplot || apt_install gnuplot-nox ;;
        python3) have python3 || apt_install python3 ;;
        valgrind) have valgrind || apt_install valgrind ;;
        taskset) have taskset || apt_install util-linux ;;
        pgrep) have pgrep || apt_install procps ;;
        cargo) have cargo || die "cargo not found: install Rust (https://rustup.rs)" ;;
        *) die "ensure_tools: unknown tool $tool" ;;
        esac
    done
    if [[ " $* " == *" nginx "* ]]; then find_nginx || die "nginx did not install"; fi
}

# Raise the descriptor limit to the hard limit, for this shell and every process it
# starts (servers and clients alike).
raise_nofile() {
    ulimit -n "$(ulimit -Hn)"
    log "ulimit -n $(ulimit -n)"
}

# ---------------------------------------------------------------------------------
# Builds. Each sets the path of what it built.

DEMO=
DEMO_PROXY=     # set to 1 when `demo-server proxy --help` succeeds
DEMO_PROXY_HELP=
build_demo() { # DEMO_SERVER=path skips the build and runs that binary instead
    if [ -n "${DEMO_SERVER:-}" ]; then
        DEMO=$DEMO_SERVER
        log "demo-server: using DEMO_SERVER=$DEMO (not built)"
    else
        log "building demo-server (release)"
        (cd "$ROOT" && nice -n 10 cargo build --release -q -p demo-server)
        local target
        target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
        DEMO=$target/release/demo-server
    fi
    [ -x "$DEMO" ] || die "no executable $DEMO"
    if DEMO_PROXY_HELP=$("$DEMO" proxy --help 2>&1); then
        DEMO_PROXY=1
    else
        DEMO_PROXY=
        log "demo-server has no proxy mode yet (\`demo-server proxy --help\` failed): skipping it"
    fi
}

# demo_proxy_has FLAG: whether `demo-server proxy --help` lists FLAG.
demo_proxy_has() { [[ $DEMO_PROXY_HELP == *"$1"* ]]; }

HYPER_HELLO=
HYPER_PROXY=
# selected PREFIX: whether ONLY (empty: every server) names a server starting with
# PREFIX (`hyper` for hyper and hyper-proxy, `go` for go, go-proxy and go-proxy-pool).
selected() {
    local name
    [ -z "${ONLY:-}" ] && return 0
    for name in $ONLY; do
        if [[ $name == "$1"* ]]; then return 0; fi
    done
    return 1
}

# build_peers: builds (and checks the tools of) only the peers ONLY selects.
build_peers() {
    if selected nginx; then ensure_tools nginx; fi
    if selected go; then
        ensure_tools go
        build_go
    fi
    if selected hyper; then build_hyper; fi
}

build_hyper() { # the peers have their own workspaces and lock files, one target dir
    local crate
    for crate in hyper-hello hyper-proxy; do
        log "building bench/peers/$crate (release)"
        CARGO_TARGET_DIR=$BUILD/target nice -n 10 cargo build --release -q \
            --manifest-path "$BENCH/peers/$crate/Cargo.toml"
    done
    HYPER_HELLO=$BUILD/target/release/hyper-hello
    HYPER_PROXY=$BUILD/target/release/hyper-proxy
}

GO_PEER=
build_go() { # standard library only: nothing is fetched (GOPROXY=off)
    log "building bench/peers/go/peer.go ($(go version | cut -d' ' -f3))"
    GO_PEER=$BUILD/go-peer
    GOCACHE=$BUILD/go-cache GOPATH=$BUILD/gopath GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local \
        GO111MODULE=on nice -n 10 go build -o "$GO_PEER" "$BENCH/peers/go/peer.go"
}

# ---------------------------------------------------------------------------------
# nginx: its own prefix, config, logs and temp dirs under $TMP; the system config is
# never read (-c and -e point into the prefix).

# nginx_prefix MODE NAME: writes a config for MODE (hello or proxy) listening on
# $PORT, proxying to $BACKEND, and prints the prefix directory.
nginx_prefix() {
    local mode=$1 name=$2 prefix location
    prefix=$TMP/$name
    mkdir -p "$prefix/tmp"
    chmod 755 "$prefix" "$prefix/tmp"
    if [ "$mode" = hello ]; then
        location='return 200 "Hello, World!";'
    else
        location="proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";"
    fi
    cat >"$prefix/nginx.conf" <<EOF
# Written by bench/lib.sh for one benchmark run.
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events {
    worker_connections 20000;
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default; the
    # other servers do not, so neither does it here.
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    upstream backend {
        server 127.0.0.1:$BACKEND;
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 600s;
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / {
            $location
        }
    }
}
EOF
    echo "$prefix"
}

# ---------------------------------------------------------------------------------
# Servers. server_cmd NAME fills the array CMD with the command that runs server NAME
# on $PORT (proxies in front of $BACKEND). Hello servers: demo, hyper, nginx, go.
# Proxies: demo-proxy (and demo-proxy-nopool when it has --no-buffer-pool),
# nginx-proxy, hyper-proxy, go-proxy, go-proxy-pool.

HELLO_SERVERS=(demo hyper nginx go)
proxy_servers() { # prints the proxies to measure
    local list=()
    if [ -n "$DEMO_PROXY" ]; then
        list+=(demo-proxy)
        if demo_proxy_has --no-buffer-pool; then list+=(demo-proxy-nopool); fi
    fi
    list+=(nginx-proxy hyper-proxy go-proxy go-proxy-pool)
    echo "${list[@]}"
}

# Extra `--flag=value` arguments for demo-server serve and proxy (the idle-connection
# benchmark raises the connection limit and the idle timeout).
DEMO_EXTRA=()

demo_proxy_cmd() {
    CMD=("$DEMO" proxy --addr "127.0.0.1:$PORT" --upstream "127.0.0.1:$BACKEND")
    if demo_proxy_has --threads; then CMD+=(--threads 1); fi
    if demo_proxy_has --admin; then CMD+=(--admin "127.0.0.1:$ADMIN"); fi
    local flag
    for flag in "${DEMO_EXTRA[@]+"${DEMO_EXTRA[@]}"}"; do
        # Only the flags that the proxy has (`serve`'s client-side limits, in time).
        if demo_proxy_has "${flag%%=*}"; then CMD+=("$flag"); fi
    done
}

server_cmd() {
    local name=$1
    case $name in
    demo)
        CMD=("$DEMO" serve --addr "127.0.0.1:$PORT" --threads 1 "${DEMO_EXTRA[@]+"${DEMO_EXTRA[@]}"}")
        ;;
    demo-proxy) demo_proxy_cmd ;;
    demo-proxy-nopool)
        demo_proxy_cmd
        CMD+=(--no-buffer-pool)
        ;;
    hyper) CMD=("$HYPER_HELLO" "127.0.0.1:$PORT") ;;
    hyper-proxy) CMD=("$HYPER_PROXY" "127.0.0.1:$PORT" "127.0.0.1:$BACKEND") ;;
    nginx | nginx-proxy)
        local mode=hello prefix
        [ "$name" = nginx ] || mode=proxy
        prefix=$(nginx_prefix "$mode" "$name")
        CMD=("$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log")
        ;;
    go) CMD=(env GOMAXPROCS=1 "$GO_PEER" -addr "127.0.0.1:$PORT") ;;
    go-proxy) CMD=(env GOMAXPROCS=1 "$GO_PEER" -addr "127.0.0.1:$PORT" -upstream "127.0.0.1:$BACKEND") ;;
    go-proxy-pool)
        CMD=(env GOMAXPROCS=1 "$GO_PEER" -addr "127.0.0.1:$PORT" -upstream "127.0.0.1:$BACKEND" -buffer-pool)
        ;;
    *) die "unknown server $name" ;;
    esac
}

# ---------------------------------------------------------------------------------
# Processes. Every process a script starts is recorded in PIDS; stop_pid and the EXIT
# trap end exactly those (and, if one must be killed, the children it forked, such as
# an nginx worker), never anything found by name.

PIDS=()

# start_bg LOGNAME CMD...: runs CMD in the background (taskset and env exec, so $! is
# the server itself) and sets STARTED to its PID.
STARTED=
start_bg() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

# run_tracked CMD...: runs CMD to its end like a foreground command, but as a recorded
# background PID, so that a signal to the script ends it too (bash runs a trap only
# after a foreground command returns; `wait` returns at once).
run_tracked() {
    "$@" &
    local pid=$! rc=0
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}

forget_pid() {
    local kept=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
    PIDS=("${kept[@]+"${kept[@]}"}")
}

# alive PID: the process exists and is not a zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# tree PID: PID and all its descendants.
tree() {
    local child
    echo "$1"
    for child in $(pgrep -P "$1" || true); do tree "$child"; done
}

stop_pid() {
    local pid=$1 kids i
    kids=$(tree "$pid" | tail -n +2)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
        # shellcheck disable=SC2086
        kill -KILL "$pid" $kids 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# ensure_backend: starts the demo-server backend behind every proxy (one thread, on
# core 1 beside the load generator) unless it is running; once per script run.
BACKEND_PID=
ensure_backend() {
    if [ -n "$BACKEND_PID" ] && alive "$BACKEND_PID"; then return; fi
    PORT=$BACKEND start_server demo backend 1 || die "the backend did not start"
    BACKEND_PID=$STARTED
}

cleanup() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# http_ok PORT: one `GET /` on a fresh connection is answered 200.
http_ok() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ $line == "HTTP/1.1 200"* ]]
    ) 2>/dev/null
}

# start_server NAME LOGNAME [CPU]: starts server NAME (pinned to CPU if given), waits
# until it answers `GET /` with 200, sets STARTED; returns 1 (after stopping it) if
# it does not within 20 s.
start_server() {
    local name=$1 logname=$2 cpu=${3:-} i
    # Something already listening there would be measured instead of NAME.
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT is already in use (by a process this script did not start)"
    fi
    server_cmd "$name"
    if [ -n "$cpu" ]; then CMD=(taskset -c "$cpu" "${CMD[@]}"); fi
    start_bg "$logname" "${CMD[@]}"
    local pid=$STARTED
    for ((i = 0; i < 200; i++)); do
        if ! alive "$pid"; then
            log "$name exited at start: $(tail -n 5 "$TMP/$logname.log")"
            stop_pid "$pid"
            return 1
        fi
        if http_ok "$PORT"; then
            STARTED=$pid
            return 0
        fi
        sleep 0.1
    done
    log "$name does not answer GET / with 200 on port $PORT: $(tail -n 5 "$TMP/$logname.log")"
    stop_pid "$pid"
    return 1
}

# cpu_ticks PID: "TOTAL USER": utime + stime, and utime alone (clock ticks), of PID
# and its descendants, from /proc/PID/stat fields 14 and 15 (all threads of each
# process).
cpu_ticks() {
    local total=0 user=0 p stat f
    for p in $(tree "$1"); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) } # fields from 3 on (the command name may hold spaces)
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
        user=$((user + f[11]))
    done
    echo "$total $user"
}

# rss_kib PID: VmRSS (KiB) of PID and its descendants.
rss_kib() {
    local total=0 p kib
    for p in $(tree "$1"); do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

# Write what a result depends on beside the results: machine, kernel, tool versions.
write_env() {
    local file=$1
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "cores: $(nproc)"
        echo "memory: $(awk '/^MemTotal:/ { print $2 " kB" }' /proc/meminfo)"
        echo "kernel: $(uname -sr)"
        echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
        echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
        echo "rustc: $(rustc --version 2>/dev/null)"
        have wrk && echo "wrk: $(wrk -v 2>&1 | head -n 1)"
        [ -n "$NGINX" ] && echo "nginx: $("$NGINX" -v 2>&1)"
        have go && echo "go: $(go version)"
        echo "hyper: $(grep -A1 '^name = "hyper"$' "$BENCH/peers/hyper-hello/Cargo.lock" | sed -n 's/^version = //p' | tr -d '"')"
        echo "HYPER_PIPELINE_FLUSH: ${HYPER_PIPELINE_FLUSH:-1} (0: hyper peers without pipeline_flush)"
        echo "clk_tck: $(getconf CLK_TCK)"
        echo "ulimit -n: $(ulimit -n)"
    } >"$file"
}
