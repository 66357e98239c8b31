#!/usr/bin/python3
"""bench/programs/cell.py: run one cell of the real-program suite.

Runs the measured program (or a server and a client that talks to it),
under an optional memory cgroup (kernel swap) or with extra environment
(uvmpager's LD_PRELOAD shim), with a hard timeout, and writes "key value"
lines: status (ok, timeout, oom, killed, exit N), wall time, the output's
sha256, rusage of the measured process (peak RSS, major faults, CPU),
swap counters before/after (/proc/vmstat, the cgroup's memory.stat, the
daemon's stat file), the daemon's CPU time, and the peak over the run of
the program's resident memory outside managed objects (the daemon's
clients/PID/stat outside_bytes).

usage: cell.py --out KV --output FILE --timeout S [--cgroup DIR]
               [--env K=V]... [--uvm-mnt DIR --daemon-pid PID]
               [--stdin FILE] [--server-port P] [--server ARGV...] -- ARGV...
With --server the server is the measured process (cgroup, env) and ARGV is
a client run plainly, whose stdout is the output.
"""
import argparse
import hashlib
import os
import shlex
import signal
import socket
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def kv_file(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 2:
                    d[p[0]] = p[1]
    except OSError:
        pass
    return d


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        p = s[s.rindex(")") + 2:].split()
        return (int(p[11]) + int(p[12])) / CLK
    except (OSError, ValueError, IndexError):
        return float("nan")


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--cgroup")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--uvm-mnt")
    ap.add_argument("--daemon-pid", type=int)
    ap.add_argument("--stdin")
    ap.add_argument("--server")
    ap.add_argument("--server-port", type=int)
    ap.add_argument("argv", nargs="+")
    a = ap.parse_args()

    menv = dict(os.environ)
    for e in a.env:
        k, _, v = e.partition("=")
        menv[k] = v
    # the client and the runner itself never run under the shim
    penv = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "UVMPAGER_"))}

    def into_cgroup():
        os.setsid()
        if a.cgroup:
            with open(os.path.join(a.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    out = {}
    vm0 = kv_file("/proc/vmstat")
    uvm0 = kv_file(os.path.join(a.uvm_mnt, "stat")) if a.uvm_mnt else {}
    cg0 = kv_file(os.path.join(a.cgroup, "memory.stat")) if a.cgroup else {}
    dcpu0 = proc_cpu(a.daemon_pid) if a.daemon_pid else float("nan")

    outf = open(a.output, "wb")
    errf = open(a.output + ".err", "wb")
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    client = None
    status = None
    if a.server:
        sargv = shlex.split(a.server)
        mpid = os.fork()
        if mpid == 0:
            try:
                into_cgroup()
                os.dup2(errf.fileno(), 1)
                os.dup2(errf.fileno(), 2)
                os.execvpe(sargv[0], sargv, menv)
            finally:
                os._exit(127)
        up = False
        while time.monotonic() < min(deadline, t0 + 60):
            try:
                socket.create_connection(("127.0.0.1", a.server_port), 0.5).close()
                up = True
                break
            except OSError:
                if os.waitpid(mpid, os.WNOHANG)[0]:
                    mpid = -mpid
                    break
                time.sleep(0.1)
        if not up:
            status = "server-down"
        else:
            t0 = time.monotonic()
            cpid = os.fork()
            if cpid == 0:
                try:
                    os.setsid()
                    os.dup2(outf.fileno(), 1)
                    os.dup2(errf.fileno(), 2)
                    os.execvpe(a.argv[0], a.argv, penv)
                finally:
                    os._exit(127)
            client = cpid
    else:
        mpid = os.fork()
        if mpid == 0:
            try:
                into_cgroup()
                if a.stdin:
                    fd = os.open(a.stdin, os.O_RDONLY)
                    os.dup2(fd, 0)
                os.dup2(outf.fileno(), 1)
                os.dup2(errf.fileno(), 2)
                os.execvpe(a.argv[0], a.argv, menv)
            finally:
                os._exit(127)

    peak_out = peak_res = peak_rss = peak_cgswap = 0
    ru = None
    rc = None
    crc = None
    killed = False
    cli_stat = os.path.join(a.uvm_mnt, "clients", str(mpid), "stat") if a.uvm_mnt and mpid > 0 else None
    end = None
    while status is None:
        now = time.monotonic()
        # the program's own figures while it runs
        if mpid > 0 and rc is None:
            peak_rss = max(peak_rss, proc_status(mpid, "VmRSS"))
            if cli_stat:
                c = kv_file(cli_stat)
                peak_out = max(peak_out, int(c.get("outside_bytes", 0)))
                peak_res = max(peak_res, int(c.get("resident_bytes", 0)))
            if a.cgroup:
                g = kv_file(os.path.join(a.cgroup, "memory.stat"))
                peak_cgswap = max(peak_cgswap, int(g.get("swap", 0)))
        if client:
            p, st = os.waitpid(client, os.WNOHANG)
            if p:
                crc = st
                end = time.monotonic()
                client = None
                # the output is complete: stop the server
                try:
                    os.kill(mpid, signal.SIGTERM)
                except OSError:
                    pass
                stop_by = time.monotonic() + 15
                while rc is None and time.monotonic() < stop_by:
                    p, st, r = os.wait4(mpid, os.WNOHANG)
                    if p:
                        rc, ru = st, r
                    else:
                        time.sleep(0.05)
                if rc is None:
                    os.killpg(mpid, signal.SIGKILL)
                    _, rc, ru = os.wait4(mpid, 0)
                break
        if rc is None and mpid > 0:
            p, st, r = os.wait4(mpid, os.WNOHANG)
            if p:
                rc, ru = st, r
                if end is None:
                    end = time.monotonic()
                if not a.server:
                    break
                # the server died under its client
                if client:
                    os.killpg(client, signal.SIGKILL)
                    os.waitpid(client, 0)
                    client = None
                break
        if now > deadline:
            killed = True
            for pid in (client, mpid):
                if pid and pid > 0:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
            if client:
                crc = os.waitpid(client, 0)[1]
            if rc is None and mpid > 0:
                _, rc, ru = os.wait4(mpid, 0)
            end = time.monotonic()
            break
        time.sleep(0.2)
    if end is None:
        end = time.monotonic()
    outf.close()
    errf.close()

    oom = 0
    if a.cgroup:
        oom = int(kv_file(os.path.join(a.cgroup, "memory.oom_control")).get("oom_kill", 0))
    if status is None:
        if killed:
            status = "timeout"
        elif oom:
            status = "oom"
        elif rc is not None and os.WIFSIGNALED(rc) and (not a.server or os.WTERMSIG(rc) != signal.SIGTERM):
            status = "signal-%d" % os.WTERMSIG(rc)
        elif a.server and crc is not None and os.waitstatus_to_exitcode(crc) != 0:
            status = "client-exit-%d" % os.waitstatus_to_exitcode(crc)
        elif not a.server and os.waitstatus_to_exitcode(rc) != 0:
            status = "exit-%d" % os.waitstatus_to_exitcode(rc)
        elif a.server and crc is None:
            status = "server-died"
        else:
            status = "ok"

    h = hashlib.sha256()
    n = 0
    with open(a.output, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
            n += len(blk)
    out["status"] = status
    out["wall_s"] = "%.2f" % (end - t0)
    out["output_sha256"] = h.hexdigest()
    out["output_bytes"] = n
    if ru is not None:
        out["peak_rss_bytes"] = max(ru.ru_maxrss * 1024, peak_rss)
        out["utime_s"] = "%.2f" % ru.ru_utime
        out["stime_s"] = "%.2f" % ru.ru_stime
        out["majflt"] = ru.ru_majflt
    vm1 = kv_file("/proc/vmstat")
    for k in ("pswpin", "pswpout", "pgmajfault"):
        out["vm." + k] = int(vm1.get(k, 0)) - int(vm0.get(k, 0))
    if a.cgroup:
        cg1 = kv_file(os.path.join(a.cgroup, "memory.stat"))
        out["cg.pgmajfault"] = int(cg1.get("pgmajfault", 0)) - int(cg0.get("pgmajfault", 0))
        out["cg.swap_peak_bytes"] = peak_cgswap
        out["cg.oom_kill"] = oom
        for k in ("max_usage_in_bytes", "memsw.max_usage_in_bytes", "failcnt"):
            v = kv_file(os.path.join(a.cgroup, "memory." + k))
            try:
                out["cg." + k] = open(os.path.join(a.cgroup, "memory." + k)).read().strip()
            except OSError:
                pass
    if a.uvm_mnt:
        uvm1 = kv_file(os.path.join(a.uvm_mnt, "stat"))
        for k in ("swapins", "swapouts", "evictions", "swap_read_bytes", "swap_write_bytes",
                  "faults", "read_ops", "write_ops"):
            if k in uvm1:
                out["uvm." + k] = int(uvm1[k]) - int(uvm0.get(k, 0))
        out["uvm.outside_peak_bytes"] = peak_out
        out["uvm.resident_peak_bytes"] = peak_res
    if a.daemon_pid:
        out["daemon_cpu_s"] = "%.2f" % (proc_cpu(a.daemon_pid) - dcpu0)
    with open(a.out, "a") as f:
        for k, v in out.items():
            f.write("%s %s\n" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
