#!/usr/bin/python3
"""bench/programs/report.py RESULTS_DIR: table, CSV and plot of a
`bench/run --programs` run.

Reads RESULTS_DIR/meta.txt and raw/<program>.<way>.txt (cell.py's "key
value" lines plus the runner's); writes table.txt (also printed),
results.csv (every cell, every figure) and plot.png / plot.gp (gnuplot).
"""
import csv
import math
import os
import subprocess
import sys

NAN = float("nan")
LEVELS = ["tight", "moderate"]
WAYS = ["kernel", "uvmpager"]


def read_kv(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split(" ", 1)
                if len(p) == 2:
                    d[p[0]] = p[1]
    except OSError:
        pass
    return d


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def ok(x):
    return isinstance(x, float) and not math.isnan(x)


def fmt(v, spec):
    return spec % v if ok(v) else "-"


def mib(v):
    return num(v) / 2**20


def main():
    res = sys.argv[1]
    raw = os.path.join(res, "raw")
    meta = read_kv(os.path.join(res, "meta.txt"))
    progs = meta.get("programs", "").split()
    cells = {}
    for p in progs:
        for way in ["plain"] + ["%s-%s" % (w, l) for l in LEVELS for w in WAYS]:
            path = os.path.join(raw, "%s.%s.txt" % (p, way))
            if os.path.exists(path):
                cells[(p, way)] = read_kv(path)

    def status(d):
        s = d.get("status", "missing")
        if s == "ok" and d.get("output_same", "same") != "same":
            return "WRONG OUTPUT"
        return s

    def wall(d):
        return num(d.get("wall_s")) if status(d) == "ok" else NAN

    def shown(d, spec="%.1f"):
        s = status(d)
        return fmt(num(d.get("wall_s")), spec) if s == "ok" else \
            {"timeout": "timeout", "oom": "OOM-killed"}.get(s, s)

    L = []
    P = L.append
    P("uvmpager real-program benchmark, %s" % meta.get("date", "?"))
    P("command: %s   tree %s" % (meta.get("command", "?"), meta.get("git", "?")))
    P("machine: kernel %s, %s CPUs, %.0f GiB RAM; swap files on %s; vm.page-cluster %s"
      % (meta.get("kernel", "?"), meta.get("cpus", "?"), num(meta.get("mem_total_kb")) / 2**20,
         meta.get("fs", "?"), meta.get("page_cluster", "?")))
    P("limits: tight %s, moderate %s of the plain run's peak RSS; a cell's timeout min(%s s, 8 x plain + 15 s, or 3 x the kernel's where it finished)"
      % (meta.get("tight"), meta.get("moderate"), meta.get("timeout_cap_s")))
    P("noise: load average %s at start, %s at end; machine CPU busy %s%% over the run (ours included);"
      " run took %s s" % (meta.get("loadavg_start", "?"), meta.get("loadavg_end", "?"),
                          meta.get("cpu_busy_pct", "?"), meta.get("run_seconds", "?")))
    P("")
    hdr = ("%-18s %-8s %6s %7s %9s %9s %6s %13s %13s %7s %7s %7s %7s %7s %s" %
           ("program", "limit", "MiB", "plain s", "kernel s", "uvm s", "u/k", "k in/out MiB",
            "u in/out MiB", "dCPU s", "RSS k", "RSS u", "outsd u", "u/plain", "output"))
    P(hdr)
    P("-" * len(hdr))
    rows = []
    for p in progs:
        pl = cells.get((p, "plain"))
        if pl is None:
            continue
        for lev in LEVELS:
            k = cells.get((p, "kernel-" + lev), {})
            u = cells.get((p, "uvmpager-" + lev), {})
            lim = num((k or u).get("limit_bytes"))
            kw, uw, pw = wall(k), wall(u), wall(pl)
            ratio = uw / kw if ok(kw) and ok(uw) and kw > 0 else NAN
            kin, kout = mib(num(k.get("vm.pswpin")) * 4096), mib(num(k.get("vm.pswpout")) * 4096)
            uin, uout = mib(u.get("uvm.swap_read_bytes")), mib(u.get("uvm.swap_write_bytes"))
            outs = []
            for w, d in (("kernel", k), ("uvmpager", u)):
                if d and d.get("output_same") not in ("same", "-", None):
                    outs.append("%s DIFFERENT" % w)
            done = [d for d in (k, u) if d.get("output_same") in ("same", "DIFFERENT")]
            out = ", ".join(outs) or ("same" if done else "-")
            if status(pl) != "ok":
                out = "plain run: " + status(pl)
            r = dict(program=p, level=lev, limit_mib=mib(lim), plain_s=pw, kernel_s=kw, uvmpager_s=uw,
                     uvm_over_kernel=ratio, kernel_status=status(k) if k else "-",
                     uvmpager_status=status(u) if u else "-",
                     kernel_swapin_mib=kin, kernel_swapout_mib=kout,
                     kernel_cg_pgmajfault=num(k.get("cg.pgmajfault")),
                     uvmpager_swapin_mib=uin, uvmpager_swapout_mib=uout,
                     uvmpager_swapins=num(u.get("uvm.swapins")), uvmpager_swapouts=num(u.get("uvm.swapouts")),
                     daemon_cpu_s=num(u.get("daemon_cpu_s")), daemon_peak_rss_mib=num(u.get("daemon_peak_rss_kb")) / 1024,
                     plain_peak_rss_mib=mib(pl.get("peak_rss_bytes")),
                     kernel_peak_rss_mib=mib(k.get("peak_rss_bytes")),
                     uvmpager_peak_rss_mib=mib(u.get("peak_rss_bytes")),
                     uvmpager_outside_peak_mib=mib(u.get("uvm.outside_peak_bytes")),
                     uvmpager_managed_resident_peak_mib=mib(u.get("uvm.resident_peak_bytes")),
                     uvm_over_plain=uw / pw if ok(uw) and ok(pw) and pw > 0 else NAN,
                     output=out)
            rows.append(r)
            P("%-18s %-8s %6s %7s %9s %9s %6s %13s %13s %7s %7s %7s %7s %7s %s" % (
                p, lev, fmt(r["limit_mib"], "%.0f"), fmt(pw, "%.1f"), shown(k) if k else "-",
                shown(u) if u else "-", fmt(ratio, "%.2f"),
                "%s/%s" % (fmt(kin, "%.0f"), fmt(kout, "%.0f")),
                "%s/%s" % (fmt(uin, "%.0f"), fmt(uout, "%.0f")),
                fmt(r["daemon_cpu_s"], "%.1f"), fmt(r["kernel_peak_rss_mib"], "%.0f"),
                fmt(r["uvmpager_peak_rss_mib"], "%.0f"), fmt(r["uvmpager_outside_peak_mib"], "%.0f"),
                fmt(r["uvm_over_plain"], "%.1f"), out))
    P("")
    P("MiB: the limit (memory cgroup limit and uvmpager budget). plain/kernel/uvm s: wall time (servers: the"
      " client's load and queries); OOM-killed,")
    P("timeout: the cell did not finish (not a failure of the suite). u/k: uvmpager / kernel wall time. k in/out:"
      " pswpin/pswpout over the cell (/proc/vmstat);")
    P("u in/out: the daemon's swap_read_bytes/swap_write_bytes. dCPU: uvmpagerd's CPU (/proc/PID/stat) over the"
      " cell. RSS k/u: the program's peak RSS (ru_maxrss;")
    P("managed pages count, they are shared memory). outsd u: peak over the run of the program's resident memory"
      " outside managed objects (the daemon's")
    P("clients/PID/stat outside_bytes, sampled every 0.2 s): what the budget does not cover. u/plain: uvmpager /"
      " plain wall time. output: checksum against the plain run's.")
    P("Plain peak RSS (MiB): " + ", ".join("%s %.0f" % (p, mib(cells[(p, "plain")].get("peak_rss_bytes")))
                                          for p in progs if (p, "plain") in cells))
    text = "\n".join(L) + "\n"
    with open(os.path.join(res, "table.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)

    if rows:
        with open(os.path.join(res, "results.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})

    # plot: wall time over plain per program and limit, kernel and uvmpager;
    # a cell that did not finish is drawn at its timeout, hatched
    dat = os.path.join(res, "plot.dat")
    with open(dat, "w") as f:
        f.write("label kernel uvmpager kernel_dnf uvmpager_dnf\n")
        for r in rows:
            vals = []
            dnf = []
            for w in WAYS:
                d = cells.get((r["program"], "%s-%s" % (w, r["level"])), {})
                v = r[w + "_s"]
                t = num(d.get("wall_s"))
                if ok(v):
                    vals.append(v / r["plain_s"]); dnf.append(NAN)
                elif ok(t):
                    vals.append(NAN); dnf.append(t / r["plain_s"])
                else:
                    vals.append(NAN); dnf.append(NAN)
            f.write('"%s\\n%s %.0fM" %s\n' % (r["program"], r["level"], r["limit_mib"],
                                           " ".join("NaN" if not ok(x) else "%.3f" % x for x in vals + dnf)))
    gp = os.path.join(res, "plot.gp")
    with open(gp, "w") as f:
        f.write("""set terminal pngcairo size 1400,600 font ",9"
set output "%s"
set title "real programs: wall time / plain run's (log); hatched: OOM-killed or timed out (drawn at the time it ran)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.1:*]
set grid ytics
set xtics rotate by -35 font ",8"
set key top left
set datafile missing "NaN"
plot "%s" using 2:xtic(1) title "kernel swap" lc rgb "#4477aa", \\
     "" using 3 title "uvmpager" lc rgb "#ee6677", \\
     "" using 4 title "kernel: did not finish" lc rgb "#4477aa" fs pattern 4, \\
     "" using 5 title "uvmpager: did not finish" lc rgb "#ee6677" fs pattern 4
""" % (os.path.join(res, "plot.png"), dat))
    try:
        subprocess.run(["gnuplot", gp], check=True, stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as e:
        print("report: no plot (%s)" % e, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
