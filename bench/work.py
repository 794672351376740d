#!/usr/bin/env python3
"""Kernel work per message: the system calls and instructions each balancer spends per rr
message and per connection, counted (not timed) so the figures hold on a noisy machine.

CPU time per message is ~96% kernel for every balancer here (perf shows the TCP stack),
so what a balancer can still save is system calls; this counts them with `perf stat` on
syscall tracepoints (counted in the kernel, so the balancer runs near full speed) over the
balancer's whole process tree for one load run, then its instructions (user and kernel) over
a second run without tracepoints, since each enabled tracepoint adds kernel instructions to
every call. Needs root (tracepoints).

  bench/work.py --ferry-bin .build/release/ferry [--secs 3] [--json out.json]

It reuses the shared yardstick's configurations and tools (../shared/bench/compare.py, or
$FERRY_COMPARE) on its own ports, so it can run beside nothing else.
"""
import argparse, importlib.util, json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRONT, BACKENDS = 12200, [19201, 19202, 19203]

def load_compare():
    p = os.environ.get("FERRY_COMPARE") or os.path.join(ROOT, "..", "shared", "bench", "compare.py")
    if not os.path.exists(p):
        sys.exit(f"work: the shared yardstick is not at {p}; set FERRY_COMPARE to compare.py")
    spec = importlib.util.spec_from_file_location("compare", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # Its config generators read these globals: point them at this script's own ports.
    mod.BACKENDS, mod.IPERF = BACKENDS, 19204
    return mod

def build_tools(c):
    os.makedirs(c.BIN, exist_ok=True)
    for tool in ("loadgen", "echod"):
        src, exe = os.path.join(c.HERE, tool + ".c"), os.path.join(c.BIN, tool)
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)

def tree(proc, c):
    pids = []
    for q in [proc, getattr(proc, "extra", None)]:
        if q is not None:
            pids += c.tree_pids(q.pid)
    return pids

CALLS = ["recvfrom", "sendto", "read", "write", "readv", "writev", "recvmsg", "sendmsg", "splice",
         "epoll_wait", "epoll_ctl", "accept4", "connect", "socket", "shutdown", "close", "setsockopt",
         "getsockopt", "fcntl", "ioctl", "clock_gettime", "timer_settime"]

def perf_counts(path):
    """{event: count} from `perf stat -x,` output."""
    counts = {}
    for line in open(path):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].isdigit():
            counts.setdefault(parts[2], int(parts[0]))
    return counts

def count(c, proc, scenario, secs, events):
    """Runs one load of `scenario` while perf counts `events` on the balancer: (ops, counts)."""
    args = {"rr": ["rr", "-c", "100"], "conn": ["conn", "-c", "32"]}[scenario]
    out = tempfile.mktemp(suffix=".perf")
    pids = ",".join(str(p) for p in tree(proc, c))
    st = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-p", pids] + events,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # perf attaches asynchronously; what it counts before the load is idle waiting
        if st.poll() is not None:
            sys.exit(f"work: perf stat did not start: {st.stderr.read().strip()[-300:]}")
        r = c.loadgen(args[:1] + ["-p", str(FRONT)] + args[1:] + ["-q", "200", "-r", "40", "-b", "-d", str(secs)])
        st.send_signal(signal.SIGINT)
        st.wait(timeout=30)
        return r, perf_counts(out)
    finally:
        if st.poll() is None:
            st.kill()
            st.wait()
        if os.path.exists(out):
            os.unlink(out)

def measure(c, name, proc, scenario, secs):
    # Counting in the kernel (not tracing each call) keeps the balancer at full speed, so it
    # runs in the same regime as in compare.py: a traced balancer batches differently.
    events = ["-e", "raw_syscalls:sys_enter", "-e", "raw_syscalls:sys_exit", "--filter", "ret < 0"]
    for call in CALLS:
        events += ["-e", f"syscalls:sys_enter_{call}"]
    r, counts = count(c, proc, scenario, secs, events)
    # Instructions in a second run: enabled tracepoints add kernel instructions to every call.
    r2, instr = count(c, proc, scenario, secs, ["-e", "instructions:u", "-e", "instructions:k"])
    ops, ops2 = r.get("ops") or 0, r2.get("ops") or 0
    if not ops or not ops2:
        return {"errors": (r.get("errors") or 0) + (r2.get("errors") or 0), "ops": 0}
    per = {}
    for call in CALLS:
        n = counts.get(f"syscalls:sys_enter_{call}", 0) / ops
        if n >= 0.05:
            per[call] = round(n, 2)
    return {"ops": ops, "errors": r.get("errors", 0) + r2.get("errors", 0),
            "syscalls_per_op": round(counts.get("raw_syscalls:sys_enter", 0) / ops, 2),
            "failed_per_op": round(counts.get("raw_syscalls:sys_exit", 0) / ops, 2),
            # Instructions retired, not time: the same for one program and load whatever the
            # neighbours do, where CPU time per message moved by 20-40% between runs here.
            "user_instr_per_op": round(instr.get("instructions:u", 0) / ops2),
            "kernel_instr_per_op": round(instr.get("instructions:k", 0) / ops2),
            "by_call": per}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry-bin", required=True)
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--proxies", default="haproxy,nginx,pen,ferry")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("work: needs perf (apt-get install linux-perf)")
    c = load_compare()
    build_tools(c)
    bk = [subprocess.Popen(["taskset", "-c", "0", c.ECHOD, "-p", str(p), "-i", f"b{i+1}", "-b", "-q", "200", "-r", "40"])
          for i, p in enumerate(BACKENDS)]
    results = {}
    try:
        for p in BACKENDS:
            c.wait_port(p)
        for name in a.proxies.split(","):
            exe = {"haproxy": "haproxy", "nginx": "nginx", "pen": "pen"}.get(name)
            if exe and not shutil.which(exe):
                continue
            d = tempfile.mkdtemp(prefix=f"work-{name}-")
            proc = c.start_proxy(name, d, FRONT, os.path.abspath(a.ferry_bin))
            try:
                if not c.wait_port(FRONT):
                    print(f"# {name}: did not listen", file=sys.stderr)
                    continue
                results[name] = {sc: measure(c, name, proc, sc, a.secs) for sc in ("rr", "conn")}
            finally:
                c.stop(proc)
                shutil.rmtree(d, ignore_errors=True)
                time.sleep(0.3)
    finally:
        for p in bk:
            p.kill()
            p.wait()
    def instr(r):
        u, k = r.get("user_instr_per_op"), r.get("kernel_instr_per_op")
        return f"{u + k:,} ({u:,} + {k:,})" if u and k else "-"
    lines = ["| balancer | syscalls per rr message | of which failed (EAGAIN, EINPROGRESS) | instructions per rr message (user + kernel) "
             "| syscalls per connection | of which failed (EAGAIN, EINPROGRESS) | instructions per connection (user + kernel) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rr, cn = r["rr"], r["conn"]
        lines.append(f"| {name} | {rr.get('syscalls_per_op', '-')} | {rr.get('failed_per_op', '-')} | {instr(rr)} "
                     f"| {cn.get('syscalls_per_op', '-')} | {cn.get('failed_per_op', '-')} | {instr(cn)} |")
    lines.append("")
    lines.append("By system call (calls of 0.05 or more per message or connection):")
    lines.append("")
    for name, r in results.items():
        calls = {sc: ", ".join(f"{k} {v}" for k, v in sorted(r[sc].get("by_call", {}).items(), key=lambda kv: -kv[1]))
                 for sc in ("rr", "conn")}
        lines.append(f"- {name}: per rr message {calls['rr']}; per connection {calls['conn']}")
    table = "\n".join(lines)
    print(table)
    if a.json:
        json.dump({"results": results, "table": table}, open(a.json, "w"), indent=1)

if __name__ == "__main__":
    main()
