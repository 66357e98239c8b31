#!/usr/bin/python3
"""bench/report.py RESULTS_DIR: the table, CSV and plot of a bench/run.

Reads RESULTS_DIR/meta.txt, raw/<workload>.<way>.txt (bench-workload's
"key value" output plus the runner's cell.* lines), raw/fio-*.json and
raw/trace.txt (block_rq_issue events in the swap files' extents, with the
workload's phase markers). Writes table.txt (also printed), results.csv,
targets.csv, plot.png (gnuplot) and plot.gp; with the NBD ways (bench/run
--nbd), a "swap on NBD" table (in table.txt) and nbd.csv.
"""
import bisect
import csv
import json
import math
import os
import re
import subprocess
import sys

PAGE = 4096
WAYS = ["plain", "kernel", "uvmpager"]
# uvmpagerd on nbdkit memory servers (bench/run --nbd): rows of the table and
# of results.csv, and the "swap on NBD" table; not in the plot
NBD_WAYS = ["uvm-nbd-unix", "uvm-nbd-tcp", "uvm-nbd-2stripes"]
ALL_WAYS = WAYS + NBD_WAYS
WORKLOADS = ["seq", "randread", "randwrite", "skewed", "reevict", "firsttouch", "sparse", "multi", "threads"]
NAN = float("nan")


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def isnum(v):
    return isinstance(v, float) and not math.isnan(v)


def read_kv(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 1)
                if len(parts) == 2:
                    d[parts[0]] = parts[1]
    except OSError:
        pass
    return d


# --- inputs ---------------------------------------------------------------

def fio_limits(raw):
    out = {}
    for tag in ("start", "end"):
        def job(name):
            try:
                with open(os.path.join(raw, "fio-%s-%s.json" % (tag, name))) as f:
                    return json.load(f)["jobs"][0]
            except (OSError, ValueError, KeyError, IndexError):
                return None
        for name, rw in (("seqwrite", "write"), ("seqread", "read"),
                         ("seqwrite-qd8", "write"), ("seqread-qd8", "read")):
            j = job(name)
            if j:
                out[tag + "." + name.replace("-", "_") + "_mib_s"] = j[rw]["bw"] / 1024.0
        j = job("randread")
        if j:
            pct = j["read"]["clat_ns"].get("percentile", {})
            out[tag + ".randread_p50_us"] = pct.get("50.000000", NAN) / 1e3
            out[tag + ".randread_p99_us"] = pct.get("99.000000", NAN) / 1e3
            out[tag + ".randread_mean_us"] = j["read"]["clat_ns"]["mean"] / 1e3
    for k in ("seqwrite_mib_s", "seqread_mib_s", "seqwrite_qd8_mib_s", "seqread_qd8_mib_s",
              "randread_p50_us", "randread_p99_us", "randread_mean_us"):
        vals = [out[t + "." + k] for t in ("start", "end") if t + "." + k in out]
        out[k] = sum(vals) / len(vals) if vals else NAN
    return out


def trace_io(raw):
    """{(workload, way, phase): {r_ops, r_bytes, w_ops, w_bytes, w_busy_s}} from block_rq_issue.

    w_busy_s: time with at least one swap write in flight at the disk (from
    block_rq_issue to block_rq_complete), when the trace has completions.
    """
    ext = []
    try:
        with open(os.path.join(raw, "extents.txt")) as f:
            for line in f:
                label, a, b = line.split()
                ext.append((int(a), int(b), label))
    except OSError:
        return None
    ext.sort()
    starts = [e[0] for e in ext]
    path = os.path.join(raw, "trace.txt")
    opener = open
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        import gzip
        path, opener = path + ".gz", gzip.open
    if not os.path.exists(path):
        return None
    rq = re.compile(r"(\d+\.\d+): block_rq_issue: \d+,\d+ (\S+) \d+ \(.*?\) (\d+) \+ (\d+)")
    rc = re.compile(r"(\d+\.\d+): block_rq_complete: \d+,\d+ (\S+) \(.*?\) (\d+) \+ (\d+)")
    # writes in flight per way: sector -> count; busy time accrues while any are
    pend = {}
    busy = {}      # way -> [inflight, last_t]
    blank = lambda: {"r_ops": 0, "r_bytes": 0, "w_ops": 0, "w_bytes": 0, "w_busy_s": 0.0}

    def way_of(sector):
        i = bisect.bisect_right(starts, sector) - 1
        if i < 0 or sector >= ext[i][1]:
            return None
        return ext[i][2]

    def accrue(way, t):
        b = busy.setdefault(way, [0, t])
        if b[0] > 0 and cur is not None:
            w, _, cway = cur[0].rpartition(".")
            if cway == way:
                io.setdefault((w, way, cur[1]), blank())["w_busy_s"] += t - b[1]
        b[1] = t
        return b
    mk = re.compile(r"tracing_mark_write: uvmbench (\S+) (\S+) (begin|end|done)")
    io = {}
    cur = None
    last_end = {}   # tag -> the phase that ended last
    with opener(path, "rt", errors="replace") as f:
        for line in f:
            m = rc.search(line)
            if m:
                t, rwbs, sector = float(m.group(1)), m.group(2), int(m.group(3))
                way = way_of(sector)
                if "W" in rwbs and way and pend.get((way, sector)):
                    b = accrue(way, t)
                    pend[(way, sector)] -= 1
                    b[0] -= 1
                continue
            m = rq.search(line)
            if m:
                t, rwbs, sector, n = float(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
                fway = way_of(sector)
                if "W" in rwbs and fway:
                    b = accrue(fway, t)
                    pend[(fway, sector)] = pend.get((fway, sector), 0) + 1
                    b[0] += 1
                if cur is None:
                    continue
                tag, phase = cur
                w, _, way = tag.rpartition(".")
                if fway != way:
                    continue
                d = io.setdefault((w, way, phase), blank())
                if "W" in rwbs:
                    d["w_ops"] += 1
                    d["w_bytes"] += n * 512
                elif "R" in rwbs:
                    d["r_ops"] += 1
                    d["r_bytes"] += n * 512
                continue
            m = mk.search(line)
            if m:
                tag, phase, what = m.groups()
                if what == "begin":
                    cur = (tag, phase)
                elif what == "end":
                    # I/O trailing a phase until the next begin (async completions)
                    # is its "+tail"; after the cell's last phase, "teardown"
                    cur = (tag, phase + "+tail")
                    last_end[tag] = phase
                elif what == "done":
                    cur = None
    for (w, way, phase) in list(io):
        if phase.endswith("+tail"):
            base = phase[:-5]
            d = io.pop((w, way, phase))
            key = (w, way, "teardown" if last_end.get(w + "." + way) == base else base)
            t = io.setdefault(key, blank())
            for k in d:
                t[k] += d[k]
    return io


# --- figures per cell -------------------------------------------------------

FIGS = [
    # key, header, width, format
    ("mib_s", "MiB/s", 8, "%.0f"),
    ("kops_s", "kops/s", 7, "%.1f"),
    ("all_p50_us", "p50", 6, "%.2f"),
    ("all_p99_us", "p99", 6, "%.1f"),
    ("miss_p50_us", "mp50", 6, "%.1f"),
    ("miss_p99_us", "mp99", 6, "%.0f"),
    ("misses", "misses", 7, "%.0f"),
    ("swap_w_mib", "swW MiB", 8, "%.0f"),
    ("swap_r_mib", "swR MiB", 8, "%.0f"),
    ("evicted", "evicted", 8, "%.0f"),
    ("wio_per_evicted", "wIO/ev", 7, "%.3f"),
    ("pages_per_wio", "pg/wIO", 7, "%.1f"),
    ("rio", "rIO", 7, "%.0f"),
    ("faults", "flt|in", 7, "%.0f"),
    ("sys_s", "sys s", 6, "%.2f"),
    ("daemon_cpu_s", "dCPU s", 7, "%.2f"),
    ("daemon_rss_mib", "dRSS M", 7, "%.0f"),
    ("seconds", "s", 6, "%.2f"),
]


def cell_figures(d, way, phase, io):
    g = lambda k: num(d.get(phase + "." + k))
    f = {}
    f["seconds"] = g("seconds")
    f["mib_s"] = g("mib_s")
    f["kops_s"] = g("ops_s") / 1e3
    f["all_p50_us"] = g("lat_all_p50_us")
    f["all_p99_us"] = g("lat_all_p99_us")
    f["miss_p50_us"] = g("lat_miss_p50_us")
    f["miss_p99_us"] = g("lat_miss_p99_us")
    f["misses"] = g("misses")
    f["bad_pages"] = g("bad_pages")
    f["sys_s"] = g("stime_s")
    f["user_s"] = g("utime_s")
    f["majflt"] = g("majflt")
    z = lambda k: num(d.get(phase + "." + k, "0"))
    if way == "uvmpager" or way in NBD_WAYS:
        f["swap_w_bytes"] = z("uvm.swap_write_bytes")
        f["swap_r_bytes"] = z("uvm.swap_read_bytes")
        f["evicted"] = z("uvm.evictions")
        f["clean_evicted"] = z("uvm.clean_evictions")
        f["swapins"] = z("uvm.swapins")
        f["faults"] = f["swapins"]
        f["daemon_cpu_s"] = g("cpu.daemon_s")
        f["daemon_rss_mib"] = num(d.get("cell.daemon_peak_rss_kb")) / 1024
        f["meta_bytes"] = num(d.get("end.uvm.meta_bytes"))
        f["own_w_ops"] = z("uvm.write_ops")
        f["own_r_ops"] = z("uvm.read_ops")
    else:
        f["swap_w_bytes"] = z("vm.pswpout") * PAGE
        f["swap_r_bytes"] = z("vm.pswpin") * PAGE
        f["evicted"] = z("vm.pgsteal_anon") if way == "kernel" else 0.0
        f["swapins"] = z("vm.pswpin")
        f["faults"] = f["majflt"]
        f["daemon_cpu_s"] = g("cpu.kswapd_s") if way == "kernel" else NAN
        f["daemon_rss_mib"] = NAN
    f["swap_w_mib"] = f["swap_w_bytes"] / 2**20
    f["swap_r_mib"] = f["swap_r_bytes"] / 2**20
    wio = rio = NAN
    if io is not None:
        x = io.get(phase, {"r_ops": 0, "r_bytes": 0, "w_ops": 0, "w_bytes": 0, "w_busy_s": 0.0})
        wio, rio = float(x["w_ops"]), float(x["r_ops"])
        f["dev_w_bytes"], f["dev_r_bytes"] = float(x["w_bytes"]), float(x["r_bytes"])
        f["dev_w_busy_s"] = float(x.get("w_busy_s", 0.0)) or NAN
    elif way == "uvmpager" or way in NBD_WAYS:
        # no block device under an NBD swap: the daemon's own requests
        wio, rio = f["own_w_ops"], f["own_r_ops"]
    f["wio"], f["rio"] = wio, rio
    f["wio_per_evicted"] = wio / f["evicted"] if isnum(wio) and f["evicted"] > 0 else NAN
    f["pages_per_wio"] = f["swap_w_bytes"] / PAGE / wio if isnum(wio) and wio > 0 else NAN
    return f


NBD_KEYS = ["miss_p50_us", "miss_p99_us", "mib_s", "kops_s", "d_p50_us", "x_p50", "d_p99_us", "x_p99",
            "x_mib_s", "swapins", "swap_r_mib", "daemon_cpu_s", "nbd_rss_mib"]


def nbd_table(rows, cells, meta, disk, res_raw, P):
    """The NBD ways against uvmpagerd on its local swap file (and kernel swap),
    phase by phase: the network's cost per fault. Returns the rows for nbd.csv."""
    have = set((r[0], r[1]) for r in rows if r[2] in NBD_WAYS and r[3])
    if not have:
        return []
    out = []
    nbd_fio = {}
    P("")
    P("swap on NBD: uvmpagerd on nbdkit memory servers (on this machine; %s) against the same daemon"
      " on its local swap file (uvmpager), same run, same budget" % meta.get("nbdkit", "nbdkit"))
    for kind in ("unix", "tcp"):
        try:
            with open(os.path.join(res_raw, "fio-nbd-%s-randread.json" % kind)) as fh:
                pct = json.load(fh)["jobs"][0]["read"]["clat_ns"].get("percentile", {})
            nbd_fio[kind] = (pct.get("50.000000", NAN) / 1e3, pct.get("99.000000", NAN) / 1e3)
        except (OSError, ValueError, KeyError, IndexError):
            pass
    if nbd_fio:
        P("transport alone (fio's nbd engine, 4 KiB random reads QD1 from a written 1 GiB nbdkit memory server):"
          + ";".join(" %s p50 %s us, p99 %s us" % (k, fmt(v[0], "%.1f"), fmt(v[1], "%.1f"))
                     for k, v in sorted(nbd_fio.items(), reverse=True))
          + "; the disk under the swap file (fio, O_DIRECT): p50 %s us, p99 %s us (start of the run)"
          % (fmt(disk.get("start.randread_p50_us"), "%.1f"), fmt(disk.get("start.randread_p99_us"), "%.1f")))
    hdr = "%-10s %-6s %-16s %7s %7s %7s %7s %8s %6s %8s %6s %7s %7s %7s %7s" % (
        "workload", "phase", "way", "mp50", "mp99", "MiB/s", "kops/s", "+mp50", "x mp50",
        "+mp99", "x mp99", "x MiB/s", "swR MiB", "dCPU s", "srvRSS")
    P(hdr)
    P("-" * len(hdr))
    last = None
    for w, ph, way, f, d in rows:
        if (w, ph) not in have or way == "plain":
            continue
        if last and last != (w, ph):
            P("")
        last = (w, ph)
        if not f:
            P("%-10s %-6s %-16s %s" % (w, ph, way, "n/a" if d.get("cell.exit", "0") == "0"
                                       else "FAILED (exit %s)" % d.get("cell.exit")))
            continue
        base = next((r[3] for r in rows if r[0] == w and r[1] == ph and r[2] == "uvmpager"), {})
        b = lambda k: base.get(k, NAN)
        diff = lambda k: f[k] - b(k) if isnum(f.get(k)) and isnum(b(k)) else NAN
        ratio = lambda k: f[k] / b(k) if isnum(f.get(k)) and isnum(b(k)) and b(k) else NAN
        x = {"miss_p50_us": f.get("miss_p50_us"), "miss_p99_us": f.get("miss_p99_us"),
             "mib_s": f.get("mib_s"), "kops_s": f.get("kops_s"),
             "d_p50_us": diff("miss_p50_us"), "x_p50": ratio("miss_p50_us"),
             "d_p99_us": diff("miss_p99_us"), "x_p99": ratio("miss_p99_us"),
             "x_mib_s": ratio("mib_s"), "swapins": f.get("swapins"), "swap_r_mib": f.get("swap_r_mib"),
             "daemon_cpu_s": f.get("daemon_cpu_s"),
             "nbd_rss_mib": num(d.get("cell.nbd_peak_rss_kb")) / 1024}
        rel = way in NBD_WAYS
        bad = ""
        if d.get("cell.exit", "0") not in ("0", ""):
            bad = "  FAILED (exit %s)" % d.get("cell.exit")
        if num(f.get("bad_pages", 0)) > 0:
            bad += "  %d BAD PAGES" % f["bad_pages"]
        P("%-10s %-6s %-16s %7s %7s %7s %7s %8s %6s %8s %6s %7s %7s %7s %7s" % (
            w, ph, way + (" (file)" if way == "uvmpager" else ""),
            fmt(x["miss_p50_us"], "%.1f"), fmt(x["miss_p99_us"], "%.0f"), fmt(x["mib_s"], "%.0f"),
            fmt(x["kops_s"], "%.1f"),
            fmt(x["d_p50_us"], "%+.1f") if rel else "", fmt(x["x_p50"], "%.2f") if rel else "",
            fmt(x["d_p99_us"], "%+.0f") if rel else "", fmt(x["x_p99"], "%.2f") if rel else "",
            fmt(x["x_mib_s"], "%.2f") if rel else "", fmt(x["swap_r_mib"], "%.0f"),
            fmt(x["daemon_cpu_s"], "%.2f"), fmt(x["nbd_rss_mib"], "%.0f")) + bad)
        if rel:
            out.append([w, ph, way] + [x[k] for k in NBD_KEYS])
    P("")
    P("mp50/mp99: us per fault that waited (accesses > 2 us) in the workload; +mp50/+mp99: the NBD way's"
      " minus the local file's (uvmpager), i.e. what the network")
    P("path adds per fault; x mp50/x mp99/x MiB/s: NBD / local file. uvm-nbd-unix: one nbdkit memory"
      " server on a unix socket; uvm-nbd-tcp: one on 127.0.0.1 (loopback TCP);")
    P("uvm-nbd-2stripes: two servers on unix sockets, --swap twice (stripes of 64 pages). The servers"
      " run on this machine: their CPU competes with the workload's and the")
    P("daemon's, and srvRSS (the servers' peak RSS, MiB) is the RAM the swapped pages took there."
      " dCPU: uvmpagerd CPU (kernel: kswapd0).")
    return out


def fmt(v, spec):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return spec % v


def main():
    res = sys.argv[1]
    raw = os.path.join(res, "raw")
    meta = read_kv(os.path.join(res, "meta.txt"))
    disk = fio_limits(raw)
    io_all = trace_io(raw)

    rows = []   # (workload, phase, way, figures, cell), by workload, phase, way
    cells = {}
    for w in WORKLOADS:
        phases = []
        for way in ALL_WAYS:
            p = os.path.join(raw, "%s.%s.txt" % (w, way))
            if os.path.exists(p):
                cells[(w, way)] = read_kv(p)
                for ph in cells[(w, way)].get("measured", "").split():
                    if ph not in phases:
                        phases.append(ph)
        for ph in phases or ["-"]:
            for way in ALL_WAYS:
                d = cells.get((w, way))
                if d is None:
                    continue
                if ph not in d.get("measured", "").split():
                    rows.append((w, ph, way, {}, d))
                    continue
                io = None
                if io_all is not None and way not in NBD_WAYS:
                    io = {k[2]: v for k, v in io_all.items() if k[0] == w and k[1] == way}
                rows.append((w, ph, way, cell_figures(d, way, ph, io), d))

    lines = []
    P = lines.append
    P("uvmpager benchmark, %s" % meta.get("date", "?"))
    P("command: %s   (uvmpager column: %s)" % (meta.get("command", "?"),
      "uvmpagerd + LD_PRELOAD shim" if meta.get("uvm_mode") == "daemon"
      else "paging engine in-process (no daemon/shim yet)"))
    P("machine: kernel %s, %s CPUs, %.0f GiB RAM; swap files on %s; vm.page-cluster %s; zswap %s"
      % (meta.get("kernel", "?"), meta.get("cpus", "?"),
         num(meta.get("mem_total_kb")) / 2**20, meta.get("fs", "?"),
         meta.get("page_cluster", "?"), meta.get("zswap", "?")))
    mib = lambda k: num(meta.get(k)) / 2**20
    P("sizes: region %.0f MiB, budget %.0f MiB, %s random ops, multi %s procs; firsttouch %.0f MiB;"
      " sparse %.0f GiB touching %.0f MiB with %.0f MiB" %
      (mib("size_bytes"), mib("budget_bytes"), meta.get("ops"), meta.get("procs"),
       mib("firsttouch_bytes"), mib("sparse_bytes") / 1024, mib("sparse_touch_bytes"),
       mib("sparse_budget_bytes")))
    dd = lambda k, f="%.0f": "%s / %s" % (fmt(disk.get("start." + k), f), fmt(disk.get("end." + k), f))
    P("disk (fio, O_DIRECT, 1 MiB blocks; at the start / end of the run): seq write %s MiB/s (QD1),"
      " %s (QD8); seq read %s (QD1), %s (QD8);" % (dd("seqwrite_mib_s"), dd("seqwrite_qd8_mib_s"),
                                                   dd("seqread_mib_s"), dd("seqread_qd8_mib_s")))
    P("     4 KiB random read QD1 p50 %s / %s us, p99 %s / %s us" % (
          fmt(disk.get("start.randread_p50_us"), "%.1f"), fmt(disk.get("end.randread_p50_us"), "%.1f"),
          fmt(disk.get("start.randread_p99_us"), "%.1f"), fmt(disk.get("end.randread_p99_us"), "%.1f")))
    P("noise: load average %s at start, %s at end; machine CPU busy %s%% over the run (ours included);"
      " run took %s s" % (meta.get("loadavg_start", "?"), meta.get("loadavg_end", "?"),
                          meta.get("cpu_busy_pct", "?"), meta.get("run_seconds", "?")))
    P("I/O operations: %s" % (meta.get("io_count", "none")
                              if io_all is not None else "uvmpager's own counters (no block tracing)"))
    P("")
    ww = max([8] + [len(r[2]) for r in rows])   # the way column: 8 without --nbd
    hdr = "%-10s %-6s %-*s " % ("workload", "phase", ww, "way") + " ".join(
        "%*s" % (wd, h) for _, h, wd, _ in FIGS)
    P(hdr)
    P("-" * len(hdr))
    last = None
    for w, ph, way, f, d in rows:
        if last and last != (w, ph):
            P("")
        last = (w, ph)
        bad = ""
        if d.get("cell.exit", "0") not in ("0", ""):
            bad = "  FAILED (exit %s)" % d.get("cell.exit")
        if num(f.get("bad_pages", 0)) > 0:
            bad += "  %d BAD PAGES" % f["bad_pages"]
        if not f:
            P("%-10s %-6s %-*s %s" % (w, ph, ww, way, bad.strip() or
                                      ("n/a: " + d["skipped"] if "skipped" in d else "n/a")))
            continue
        P("%-10s %-6s %-*s " % (w, ph, ww, way) + " ".join(
            "%*s" % (wd, fmt(f.get(k), spec)) for k, _, wd, spec in FIGS) + bad)
    if io_all is not None:
        td = []
        for w in WORKLOADS:
            for way in ("kernel", "uvmpager"):
                x = io_all.get((w, way, "teardown"))
                if x and (x["r_bytes"] >= 2**19 or x["w_bytes"] >= 2**19):
                    td.append("%s/%s %.0f/%.0f" % (w, way, x["r_bytes"] / 2**20, x["w_bytes"] / 2**20))
        if td:
            P("")
            P("swap I/O after the last phase (process exit, daemon stop), MiB read/written: " + ", ".join(td))
    P("")
    P("MiB/s, kops/s: the phase's pages (or 4 KiB accesses) per second. p50/p99: latency of every access"
      " (us); mp50/mp99: of the accesses slower than 2 us (the faults that waited), measured in the")
    P("workload. swW/swR: swap written/read (kernel: pswpout/pswpin; uvmpager: its stat file). evicted:"
      " pages reclaimed (kernel: pgsteal_anon; uvmpager: evictions, clean ones included).")
    P("wIO/ev: write requests reaching the disk per evicted page; pg/wIO: pages written per write request;"
      " rIO: read requests (block_rq_issue in the swap file's extents). flt|in: major faults")
    P("(kernel, plain) or swap-ins (uvmpager). sys: the workload's system CPU. dCPU: kswapd0 (kernel) or"
      " uvmpagerd CPU; dRSS: uvmpagerd peak RSS (VmHWM) over the cell. s: the phase's wall time.")

    # --- targets ---
    def fig(w, ph, way, k):
        for r in rows:
            if r[0] == w and r[1] == ph and r[2] == way:
                return r[3].get(k, NAN)
        return NAN

    targets = []

    def target(name, kern, uvm, value, goal, ok, unit=""):
        targets.append((name, kern, uvm, value, goal, ok, unit))

    k, u = fig("seq", "reread", "kernel", "mib_s"), fig("seq", "reread", "uvmpager", "mib_s")
    r = u / k if isnum(k) and k else NAN
    target("seq re-read MiB/s vs kernel", k, u, r, ">= 3x", r >= 3 if isnum(r) else None, "x")
    for w in ("randread", "randwrite"):
        for q, lim in (("miss_p50_us", 1.25), ("miss_p99_us", 1.5)):
            k, u = fig(w, "main", "kernel", q), fig(w, "main", "uvmpager", q)
            r = u / k if isnum(k) and k else NAN
            target("%s fault %s us vs kernel" % (w, "median" if "50" in q else "p99"), k, u, r,
                   "<= %.2fx" % lim, r <= lim if isnum(r) else None, "x")
    # several threads of one process faulting at once: issue 13's threaded servers
    k, u = fig("threads", "main", "kernel", "kops_s"), fig("threads", "main", "uvmpager", "kops_s")
    r = u / k if isnum(k) and k else NAN
    target("threads: random accesses kops/s vs kernel", k, u, r, ">= 1.0x", r >= 1.0 if isnum(r) else None, "x")
    k, u = fig("skewed", "main", "kernel", "majflt"), fig("skewed", "main", "uvmpager", "swapins")
    target("skewed: swap-ins vs kernel major faults", k, u, u - k if isnum(u) and isnum(k) else NAN,
           "uvm <= kernel", u <= k if isnum(u) and isnum(k) else None, "")
    k, u = fig("reevict", "main", "kernel", "swap_w_bytes"), fig("reevict", "main", "uvmpager", "swap_w_bytes")
    du = fig("reevict", "main", "uvmpager", "dev_w_bytes")
    target("clean re-eviction: bytes written", k, u, du, "0 (value: at the disk)",
           (u == 0 and (not isnum(du) or du == 0)) if isnum(u) else None, "B")
    p, u = fig("firsttouch", "main", "plain", "seconds"), fig("firsttouch", "main", "uvmpager", "seconds")
    k = fig("firsttouch", "main", "kernel", "seconds")
    r = u / p if isnum(p) and p else NAN
    target("first touch, no limit: time vs plain (s)", k, u, r, "<= 1.5x", r <= 1.5 if isnum(r) else None, "x")
    sw = disk.get("seqwrite_mib_s", NAN)
    sw8 = disk.get("seqwrite_qd8_mib_s", NAN)
    # while writing: swap bytes at the disk / time with a swap write in flight there
    bw = lambda way: (fig("seq", "fill", way, "dev_w_bytes") / 2**20 / fig("seq", "fill", way, "dev_w_busy_s"))
    k, u = bw("kernel"), bw("uvmpager")
    r = u / sw if isnum(sw) and sw else NAN
    target("pageout MiB/s while writing, seq fill, vs disk seq write QD1 %s" % fmt(sw, "%.0f"), k, u, r,
           ">= 0.80", r >= 0.8 if isnum(r) else None, "x")
    r = u / sw8 if isnum(sw8) and sw8 else NAN
    target("  (the same vs disk seq write QD8 %s MiB/s)" % fmt(sw8, "%.0f"), k, u, r,
           ">= 0.80", r >= 0.8 if isnum(r) else None, "x")
    # per second of the fill: bounded by how fast the program dirties pages
    bw = lambda way: (fig("seq", "fill", way, "swap_w_bytes") / 2**20 / fig("seq", "fill", way, "seconds"))
    k, u = bw("kernel"), bw("uvmpager")
    r = u / sw if isnum(sw) and sw else NAN
    target("  (per second of fill, bound by the fill rate) vs QD1", k, u, r, "-", None, "x")
    k, u = fig("seq", "fill", "kernel", "pages_per_wio"), fig("seq", "fill", "uvmpager", "pages_per_wio")
    target("pages per write op, seq fill (requests at the disk)", k, u, u, ">= 16",
           u >= 16 if isnum(u) else None, "")
    ow = fig("seq", "fill", "uvmpager", "own_w_ops")
    u2 = fig("seq", "fill", "uvmpager", "swap_w_bytes") / PAGE / ow if isnum(ow) and ow else NAN
    target("  (the same, uvmpager's own write_ops)", NAN, u2, u2, ">= 16",
           u2 >= 16 if isnum(u2) else None, "")
    for w in ("sparse", "seq"):
        d = cells.get((w, "uvmpager"), {})
        mb = num(d.get("end.uvm.meta_bytes"))
        managed = num(d.get("size_bytes")) / PAGE
        v = mb / managed if isnum(mb) and managed > 0 else NAN
        target("daemon metadata bytes per managed page (%s, %s)" % (
            w, fmt(num(d.get("size_bytes")) / 2**30, "%.0f GiB")), NAN, mb, v, "<= 16",
            v <= 16 if isnum(v) else None, "B")
    d = cells.get(("sparse", "uvmpager"), {})
    okk = d.get("cell.exit") == "0" and d.get("bad_pages") == "0" and "reread.seconds" in d
    target("64 GiB managed with a 2 GiB budget works (sparse)", NAN, NAN, NAN,
           "runs, 0 bad pages", okk if d else None, "")

    P("")
    P("targets (uvmpager against kernel swap in this run)")
    th = "%-62s %10s %10s %9s %-22s %s" % ("", "kernel", "uvmpager", "value", "goal", "met")
    P(th)
    P("-" * len(th))
    for name, kv, uv, val, goal, ok, unit in targets:
        P("%-62s %10s %10s %9s %-22s %s" % (
            name, fmt(kv, "%.6g"), fmt(uv, "%.6g"),
            fmt(val, "%.3g") + (unit if unit == "x" and isnum(val) else ""), goal,
            "n/a" if ok is None else ("yes" if ok else "NO")))

    nbd_rows = nbd_table(rows, cells, meta, disk, raw, P)

    text = "\n".join(lines) + "\n"
    with open(os.path.join(res, "table.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)

    # --- CSV ---
    keys = ["seconds", "mib_s", "kops_s", "all_p50_us", "all_p99_us", "miss_p50_us", "miss_p99_us",
            "misses", "bad_pages", "swap_w_bytes", "swap_r_bytes", "evicted", "wio", "rio",
            "dev_w_bytes", "dev_r_bytes", "wio_per_evicted", "pages_per_wio", "majflt", "swapins",
            "user_s", "sys_s", "daemon_cpu_s", "daemon_rss_mib", "meta_bytes"]
    with open(os.path.join(res, "results.csv"), "w", newline="") as fh:
        cw = csv.writer(fh)
        cw.writerow(["workload", "phase", "way"] + keys + ["exit"])
        for w, ph, way, f, d in rows:
            cw.writerow([w, ph, way] + [("" if not isnum(num(f.get(k))) else "%.6g" % f[k]) for k in keys]
                        + [d.get("cell.exit", "")])
    with open(os.path.join(res, "targets.csv"), "w", newline="") as fh:
        cw = csv.writer(fh)
        cw.writerow(["target", "kernel", "uvmpager", "value", "goal", "met"])
        for name, kv, uv, val, goal, ok, unit in targets:
            cw.writerow([name] + [("" if not isnum(x) else "%.6g" % x) for x in (kv, uv, val)]
                        + [goal, "" if ok is None else ("yes" if ok else "no")])
    if nbd_rows:
        with open(os.path.join(res, "nbd.csv"), "w", newline="") as fh:
            cw = csv.writer(fh)
            cw.writerow(["workload", "phase", "way"] + NBD_KEYS)
            for r in nbd_rows:
                cw.writerow(r[:3] + [("" if not isnum(num(v)) else "%.6g" % v) for v in r[3:]])
    with open(os.path.join(res, "disk.csv"), "w", newline="") as fh:
        cw = csv.writer(fh)
        cw.writerow(["figure", "value"])
        for kk in sorted(disk):
            cw.writerow([kk, "%.6g" % disk[kk]])

    # --- plot ---
    heads = [("seq", "fill", "mib_s", "seq fill\\nMiB/s"), ("seq", "reread", "mib_s", "seq re-read\\nMiB/s"),
             ("randread", "main", "kops_s", "rand read\\nkops/s"), ("randwrite", "main", "kops_s", "rand write\\nkops/s"),
             ("skewed", "main", "kops_s", "skewed\\nkops/s"), ("reevict", "main", "mib_s", "re-evict\\nMiB/s"),
             ("firsttouch", "main", "mib_s", "first touch\\nMiB/s"), ("sparse", "fill", "mib_s", "64G fill\\nMiB/s"),
             ("sparse", "reread", "mib_s", "64G re-read\\nMiB/s"), ("multi", "main", "kops_s", "4 procs\\nkops/s"),
             ("threads", "main", "kops_s", "threads\\nkops/s")]
    with open(os.path.join(res, "plot-throughput.dat"), "w") as fh:
        for w, ph, k, label in heads:
            vals = [fig(w, ph, way, k) for way in WAYS]
            if all(not isnum(v) for v in vals):
                continue
            fh.write('"%s" %s\n' % (label, " ".join("%.6g" % v if isnum(v) and v > 0 else "NaN" for v in vals)))
    with open(os.path.join(res, "plot-latency.dat"), "w") as fh:
        for w, ph, label in (("randread", "main", "rand read"), ("randwrite", "main", "rand write"),
                             ("skewed", "main", "skewed"), ("multi", "main", "4 procs"), ("threads", "main", "threads"),
                             ("seq", "reread", "seq re-read")):
            vals = [fig(w, ph, way, q) for way in ("kernel", "uvmpager") for q in ("miss_p50_us", "miss_p99_us")]
            fh.write('"%s" %s\n' % (label, " ".join("%.6g" % v if isnum(v) and v > 0 else "NaN" for v in vals)))
    gp = """set terminal pngcairo size 1400,620 font "sans,10"
set output "%(out)s"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside bottom center horizontal
set bmargin 6
set grid ytics
set multiplot layout 1,2 title "uvmpager benchmark %(date)s: %(budget)s MiB budget, region %(size)s MiB (disk seq write QD1 %(sw)s MiB/s)"
set title "throughput (log scale)"
set logscale y
set xtics rotate by 0 font ",8"
plot "plot-throughput.dat" using 2:xtic(1) title "plain RAM" lc rgb "#999999", \\
     "" using 3 title "kernel swap" lc rgb "#d95f02", \\
     "" using 4 title "uvmpager" lc rgb "#1b9e77"
set title "latency of faults that waited (accesses > 2 us), us, log scale"
plot "plot-latency.dat" using 2:xtic(1) title "kernel median" lc rgb "#fdae6b", \\
     "" using 3 title "kernel p99" lc rgb "#d95f02", \\
     "" using 4 title "uvmpager median" lc rgb "#66c2a4", \\
     "" using 5 title "uvmpager p99" lc rgb "#1b9e77"
unset multiplot
""" % {"out": "plot.png", "date": meta.get("date", ""), "budget": "%.0f" % mib("budget_bytes"),
       "size": "%.0f" % mib("size_bytes"), "sw": fmt(sw, "%.0f")}
    with open(os.path.join(res, "plot.gp"), "w") as fh:
        fh.write(gp)
    try:
        subprocess.run(["gnuplot", "plot.gp"], cwd=res, check=True, stderr=subprocess.PIPE)
        print("results: %s (table.txt, results.csv, targets.csv, disk.csv, plot.png, raw/)" % res)
    except (OSError, subprocess.CalledProcessError) as e:
        print("results: %s (no plot: %s)" % (res, e))


if __name__ == "__main__":
    main()
