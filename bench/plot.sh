#!/usr/bin/env bash
# SVG plots (gnuplot) of the benchmark results. See bench/README.md.
#
#   bench/plot.sh                     # newest results/load-*.csv and idle-*.csv
#   bench/plot.sh --load F --idle F --pool F --out DIR
#
# Writes to DIR (default bench/plots): load-rps.svg and load-cpu.svg (medians with
# min-max bars, one panel per kind and shape), idle-conns.svg (bytes per idle
# connection per server and N) and, when bench/results/pool.csv exists (columns
# scenario,impl,ns: the pool benchmark's ns per object), pool.svg. A plot whose CSV is
# missing is skipped. Installs gnuplot-nox from apt when gnuplot is missing.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# newest GLOB: the newest CSV in results/ with at least one row of data.
newest() {
    local f
    find "$RESULTS" -maxdepth 1 -name "$1" -printf '%T@ %p\n' 2>/dev/null | sort -rn | cut -d' ' -f2- |
        while read -r f; do
            if [ "$(wc -l <"$f")" -gt 1 ]; then
                echo "$f"
                break
            fi
        done
}

LOAD=$(newest 'load-*.csv')
IDLE=$(newest 'idle-*.csv')
POOL=
[ -f "$RESULTS/pool.csv" ] && POOL=$RESULTS/pool.csv
SIZED=
[ -f "$RESULTS/sized.csv" ] && SIZED=$RESULTS/sized.csv
OUT=$BENCH/plots
while [ $# -gt 0 ]; do
    case $1 in
    --load) LOAD=$2 ;;
    --idle) IDLE=$2 ;;
    --pool) POOL=$2 ;;
    --sized) SIZED=$2 ;;
    --out) OUT=$2 ;;
    *) die "usage: bench/plot.sh [--load CSV] [--idle CSV] [--pool CSV] [--sized CSV] [--out DIR]" ;;
    esac
    shift 2
done
[ -n "$LOAD$IDLE$POOL$SIZED" ] || die "no results yet: run bench/load.sh or bench/idle-conns.sh first"

ensure_tools python3 gnuplot
mkdir -p "$OUT"
DATA=$TMP/plotdata
args=()
[ -z "$LOAD" ] || args+=(--load "$LOAD")
[ -z "$IDLE" ] || args+=(--idle "$IDLE")
[ -z "$POOL" ] || args+=(--pool "$POOL")
mkdir -p "$DATA"
[ ${#args[@]} -eq 0 ] || python3 "$BENCH/summarize.py" plotdata "$DATA" "${args[@]}" >/dev/null

COMMON='
set terminal svg size 1000,720 dynamic noenhanced font "sans,11" background "white"
set datafile columnheaders
set style fill solid 0.7 border -1
set grid ytics
set yrange [0:*]
set xtics rotate by -30 nomirror
set tics front
'

# load_plot FILE TITLE COLUMN: a 2x2 multiplot, one panel per kind and shape present;
# COLUMN is 2 (req/s) or 5 (CPU per request), followed by its min and max columns.
load_plot() {
    local file=$1 title=$2 col=$3 panel kind shape what
    {
        echo "$COMMON"
        echo "set output '$file'"
        echo "set multiplot layout 2,2 title '$title'"
        echo "set boxwidth 0.6"
        echo "unset key"
        for kind in hello proxy; do
            for shape in plain pipelined; do
                panel=$DATA/load-$kind-$shape.dat
                if [ ! -f "$panel" ]; then
                    echo "set multiplot next"
                    continue
                fi
                what="one request per round trip"
                [ "$shape" = plain ] || what="pipelined"
                echo "set title '$kind, $what'"
                echo "plot '$panel' using 0:$col:xtic(1) with boxes lc rgb '#4477aa', \\"
                echo "     '' using 0:$col:$((col + 1)):$((col + 2)) with yerrorbars lc rgb 'black' pt 0"
            done
        done
        echo "unset multiplot"
    } | gnuplot
    echo "${file#"$ROOT"/}"
}

# histogram_plot DATFILE SVG TITLE YLABEL [logscale]: clustered bars, one cluster per
# row, one bar per column.
histogram_plot() {
    local dat=$1 svg=$2 title=$3 ylabel=$4 scale=${5:-} ncol
    ncol=$(head -n 1 "$dat" | grep -o '"[^"]*"' | wc -l)
    {
        echo "$COMMON"
        echo "set output '$svg'"
        echo "set title '$title'"
        echo "set ylabel '$ylabel'"
        echo "set style data histograms"
        echo "set style histogram clustered gap 1"
        echo "set key top left"
        if [ "$scale" = logscale ]; then echo "set logscale y; set yrange [1:*]"; fi
        echo "plot for [i=2:$ncol] '$dat' using i:xtic(1) title columnhead(i)"
    } | gnuplot
    echo "${svg#"$ROOT"/}"
}

if [ -f "$DATA/load-hello-plain.dat" ] || [ -f "$DATA/load-hello-pipelined.dat" ] ||
    [ -f "$DATA/load-proxy-plain.dat" ] || [ -f "$DATA/load-proxy-pipelined.dat" ]; then
    load_plot "$OUT/load-rps.svg" "requests per second (median; bars: min-max over rounds; ${LOAD##*/})" 2
    load_plot "$OUT/load-cpu.svg" "server CPU microseconds per request (median; bars: min-max; ${LOAD##*/})" 5
fi
if [ -f "$DATA/idle.dat" ]; then
    # Log scale shows 250 B beside 16 KiB; a delta <= 0 (noise at small N) cannot be
    # drawn on it, so such a run is drawn on a linear scale.
    scale=logscale
    if ! awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i + 0 <= 0) bad = 1 } END { exit bad }' "$DATA/idle.dat"; then
        scale=
    fi
    histogram_plot "$DATA/idle.dat" "$OUT/idle-conns.svg" \
        "memory per idle keep-alive connection (${IDLE##*/})" "bytes (VmRSS delta / connections)" $scale
fi
if [ -f "$DATA/pool.dat" ]; then
    histogram_plot "$DATA/pool.dat" "$OUT/pool.svg" "pool: ns per object (get, write a byte, return)" "ns per object"
fi
if [ -n "$SIZED" ]; then
    # sized.csv (benches/sized.rs, columns variant,ns,allocs_per_op,held_mib_warm,
    # held_mib_after_burst): time per get+return, and the heap held before and after
    # a burst of 1 MiB requests.
    awk -F, 'NR == 1 { print "\"variant\" \"ns per get+return\"" } NR > 1 { print $1, $2 }' \
        "$SIZED" >"$DATA/sized-ns.dat"
    awk -F, 'NR == 1 { print "\"variant\" \"warm\" \"after a 64 MiB burst and 200,000 ops\"" }
        NR > 1 { print $1, $4, $5 }' "$SIZED" >"$DATA/sized-held.dat"
    histogram_plot "$DATA/sized-ns.dat" "$OUT/sized-ns.svg" \
        "mixed sizes 64 B - 1 MiB: ns per get, fill, return (${SIZED##*/})" "ns per op"
    histogram_plot "$DATA/sized-held.dat" "$OUT/sized-held.svg" \
        "mixed sizes: heap held by the buffers (${SIZED##*/})" "MiB"
fi
