#!/usr/bin/env python3
"""Summaries of the CSVs that bench/load.sh and bench/idle-conns.sh write.

    summarize.py load RESULTS/load-STAMP.csv     # markdown tables: medians, min-max
    summarize.py idle RESULTS/idle-STAMP.csv
    summarize.py plotdata OUTDIR [--load CSV] [--idle CSV] [--pool CSV]

`plotdata` writes whitespace-separated tables for bench/plot.sh's gnuplot script and
prints the names of the files it wrote. Standard library only.
"""

import argparse
import csv
import os
import statistics
import sys
from collections import OrderedDict

# The demo-server row that each kind of server is compared with.
BASELINE = {"hello": "demo", "proxy": "demo-proxy"}


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def group(rows, *keys):
    """Rows grouped by the given columns, in order of first appearance."""
    groups = OrderedDict()
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def stats(values):
    values = [float(v) for v in values]
    return statistics.median(values), min(values), max(values)


def median_or_none(values):
    """The median of the values present (latencies are left empty where wrk has none)."""
    values = [float(v) for v in values if v != ""]
    return statistics.median(values) if values else None


def fmt_range(med, lo, hi, digits):
    f = "{:,.%df}" % digits
    if len(set((lo, hi))) == 1:
        return f.format(med)
    return (f + " (" + f + "–" + f + ")").format(med, lo, hi)


def load_summary(rows):
    """{(kind, shape): [(server, summary dict)]}"""
    out = OrderedDict()
    for (kind, shape), shape_rows in group(rows, "kind", "shape").items():
        entries = []
        for (server,), runs in group(shape_rows, "server").items():
            entries.append(
                (
                    server,
                    {
                        "rounds": len(runs),
                        "rps": stats(r["rps"] for r in runs),
                        "cpu": stats(r["cpu_us_per_req"] for r in runs),
                        # Older CSVs have no utime column: None there.
                        "user": stats(r["user_us_per_req"] for r in runs)
                        if all(r.get("user_us_per_req") for r in runs)
                        else None,
                        "p50": median_or_none(r["p50_us"] for r in runs),
                        "p99": median_or_none(r["p99_us"] for r in runs),
                        "errors": sum(int(r["errors"]) for r in runs),
                    },
                )
            )
        out[(kind, shape)] = entries
    return out


def print_load(path):
    summary = load_summary(read_rows(path))
    for (kind, shape), entries in summary.items():
        base = dict(entries).get(BASELINE.get(kind))
        shape_text = "one request per round trip" if shape == "plain" else "pipelined"
        print(f"### {kind}, {shape_text}\n")
        users = any(s["user"] for _, s in entries)
        header = "| server | req/s median (min–max) | p50 µs | p99 µs | CPU µs/request median (min–max) |"
        rule = "|---|---:|---:|---:|---:|"
        if users:
            header += " user µs/request median (min–max) |"
            rule += "---:|"
        if base:
            header += " req/s vs demo | CPU vs demo |"
            rule += "---:|---:|"
        print(header + " rounds | errors |")
        print(rule + "---:|---:|")
        for server, s in entries:
            cells = [
                server,
                fmt_range(*s["rps"], 0),
                "–" if s["p50"] is None else f"{s['p50']:,.0f}",
                "–" if s["p99"] is None else f"{s['p99']:,.0f}",
                fmt_range(*s["cpu"], 2),
            ]
            if users:
                cells.append(fmt_range(*s["user"], 2) if s["user"] else "–")
            if base:
                cells.append(f"{s['rps'][0] / base['rps'][0]:.2f}×")
                cells.append(f"{s['cpu'][0] / base['cpu'][0]:.2f}×" if base["cpu"][0] else "–")
            cells += [str(s["rounds"]), str(s["errors"])]
            print("| " + " | ".join(cells) + " |")
        print()
    print("Medians over rounds (range in parentheses); p50 and p99 are medians of wrk's")
    print("per-round percentiles (– where wrk has none: pipelined, see bench/README.md);")
    print("CPU is the server's utime+stime per completed request; user, its utime alone.")
    print_targets(load_targets(summary))


def print_targets(rows):
    """Issue 13's targets, each met, missed or not measured, from the medians."""
    print("\n### Targets (issue 13)\n")
    print("| target | measured (medians) | verdict |")
    print("|---|---|---|")
    for target, measured, ok in rows:
        verdict = "not measured" if ok is None else ("met" if ok else "**missed**")
        print(f"| {target} | {measured} | {verdict} |")


def load_targets(summary):
    def get(kind, shape, server):
        return dict(summary.get((kind, shape), [])).get(server)

    rows = []
    demo = get("hello", "plain", "demo")
    peers = [(n, s) for n, s in summary.get(("hello", "plain"), []) if n != "demo"]
    target = "hello: CPU per request at most the best peer's"
    if demo and peers:
        best, b = min(peers, key=lambda p: p[1]["cpu"][0])
        rows.append((target, f"demo {demo['cpu'][0]:.2f} µs, best peer {best} {b['cpu'][0]:.2f} µs", demo["cpu"][0] <= b["cpu"][0]))
    else:
        rows.append((target, "–", None))
    demo, hyper = get("hello", "pipelined", "demo"), get("hello", "pipelined", "hyper")
    target = "hello pipelined: at least 5× hyper's req/s"
    if demo and hyper:
        ratio = demo["rps"][0] / hyper["rps"][0]
        rows.append((target, f"demo {demo['rps'][0]:,.0f}, hyper {hyper['rps'][0]:,.0f} ({ratio:.2f}×)", ratio >= 5))
    else:
        rows.append((target, "–", None))
    for shape in ("plain", "pipelined"):
        demo, nginx = get("proxy", shape, "demo-proxy"), get("proxy", shape, "nginx-proxy")
        for what in ("rps", "cpu"):
            target = f"proxy {shape}: " + ("req/s at least 1.2× nginx's" if what == "rps" else "CPU per request at most nginx's")
            if not (demo and nginx):
                rows.append((target, "–", None))
            elif what == "rps":
                ratio = demo["rps"][0] / nginx["rps"][0]
                rows.append((target, f"demo-proxy {demo['rps'][0]:,.0f}, nginx-proxy {nginx['rps'][0]:,.0f} ({ratio:.2f}×)", ratio >= 1.2))
            else:
                rows.append((target, f"demo-proxy {demo['cpu'][0]:.2f} µs, nginx-proxy {nginx['cpu'][0]:.2f} µs", demo["cpu"][0] <= nginx["cpu"][0]))
    return rows


def print_idle(path):
    rows = read_rows(path)
    print("| server | connections | bytes per idle connection median (min–max) | RSS before KiB | RSS after KiB | rounds |")
    print("|---|---:|---:|---:|---:|---:|")
    for (server, n), runs in group(rows, "server", "n").items():
        b = stats(r["bytes_per_conn"] for r in runs)
        before = statistics.median(float(r["rss_before_kib"]) for r in runs)
        after = statistics.median(float(r["rss_after_kib"]) for r in runs)
        print(f"| {server} | {int(n):,} | {fmt_range(*b, 0)} | {before:,.0f} | {after:,.0f} | {len(runs)} |")
    print()
    print("(VmRSS after - VmRSS before) / connections, of the server process and its children.")
    targets = []
    for server in ("demo", "demo-proxy"):
        target = f"{server}: at most 256 bytes per idle connection at every N"
        runs = [r for r in rows if r["server"] == server]
        if not runs:
            targets.append((target, "–", None))
            continue
        per_n = [(int(n), statistics.median(float(r["bytes_per_conn"]) for r in rs)) for (n,), rs in group(runs, "n").items()]
        measured = ", ".join(f"{b:,.0f} B at N={n:,}" for n, b in per_n)
        targets.append((target, measured, all(b <= 256 for _, b in per_n)))
    print_targets(targets)


def write_table(path, header, rows):
    def cell(c):  # gnuplot reads a quoted string as one column, spaces and all
        return c if isinstance(c, (int, float)) or c.replace(".", "", 1).isdigit() or c == "NaN" else f'"{c}"'

    with open(path, "w") as f:
        f.write(" ".join(f'"{h}"' for h in header) + "\n")
        for row in rows:
            f.write(" ".join(str(cell(c)) for c in row) + "\n")
    print(path)


def pivot(rows, row_key, col_key, value):
    """A table with one line per row_key and one median column per col_key."""
    cols = list(OrderedDict.fromkeys(r[col_key] for r in rows))
    table = []
    for (name,), runs in group(rows, row_key).items():
        line = [name]
        for c in cols:
            vals = [float(r[value]) for r in runs if r[col_key] == c]
            line.append(f"{statistics.median(vals):.3f}" if vals else "NaN")
        table.append(line)
    return [row_key] + cols, table


def plotdata(args):
    os.makedirs(args.outdir, exist_ok=True)
    if args.load:
        for (kind, shape), entries in load_summary(read_rows(args.load)).items():
            write_table(
                os.path.join(args.outdir, f"load-{kind}-{shape}.dat"),
                ["server", "rps", "rps_min", "rps_max", "cpu", "cpu_min", "cpu_max"],
                [[server, *s["rps"], *s["cpu"]] for server, s in entries],
            )
    if args.idle:
        rows = read_rows(args.idle)
        for r in rows:
            r["n"] = f"N={int(r['n'])}"
        write_table(os.path.join(args.outdir, "idle.dat"), *pivot(rows, "server", "n", "bytes_per_conn"))
    if args.pool:
        rows = read_rows(args.pool)
        missing = {"scenario", "impl", "ns"} - set(rows[0] if rows else ())
        if missing:
            sys.exit(f"{args.pool}: needs columns scenario,impl,ns (missing {sorted(missing)})")
        write_table(os.path.join(args.outdir, "pool.dat"), *pivot(rows, "impl", "scenario", "ns"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("load").add_argument("csv")
    sub.add_parser("idle").add_argument("csv")
    p = sub.add_parser("plotdata")
    p.add_argument("outdir")
    p.add_argument("--load")
    p.add_argument("--idle")
    p.add_argument("--pool")
    args = parser.parse_args()
    if args.command == "load":
        print_load(args.csv)
    elif args.command == "idle":
        print_idle(args.csv)
    else:
        plotdata(args)


if __name__ == "__main__":
    main()
