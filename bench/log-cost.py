#!/usr/bin/env python3
"""What logging every session costs: the shared yardstick's connection-rate scenario (32 slots of
connect, request, reply, close) against ferry without a connection log and with one, in
alternating rounds so drift on a shared machine hits both alike. ferry is pinned to CPU 1, the
load generator and backends to CPU 0, as in ../shared/bench/compare.py.

  bench/log-cost.py --ferry-bin .build/release/ferry [--rounds 3] [--secs 5]

Prints connections/s and ferry's CPU microseconds per connection for each variant (medians),
and the cost of logging as a percentage of each. The issue's bar is under 10%. Where perf is
available it also counts ferry's instructions per connection (user and kernel), which hold
still on a shared machine where CPU time moves by +-10% from round to round.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, socket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("FERRY_SHARED_BENCH") or os.path.join(ROOT, "..", "shared", "bench")
BIN = os.environ.get("FERRY_BENCH_BIN", "/tmp/ferry-bench")
# Ports of our own, so a run beside someone else's benchmark does not collide with compare.py's.
BACKENDS, FRONT = [19411, 19412, 19413], 12411
TICK = os.sysconf("SC_CLK_TCK")

def tool(name):
    exe, src = os.path.join(BIN, name), os.path.join(SHARED, name + ".c")
    if not os.path.exists(exe):
        os.makedirs(BIN, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe

def wait_port(port, t=5):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return True
        except OSError: time.sleep(0.05)
    return False

def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def start_counting(pid):
    """perf stat on ferry's user and kernel instructions: a count that, unlike CPU time, does not
    move with the neighbours' load. None where perf is missing or not permitted."""
    if not shutil.which("perf"):
        return None
    out = tempfile.mktemp(suffix=".perf")
    p = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", "instructions:u,instructions:k", "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return p, out

def stop_counting(counting):
    if counting is None:
        return {}
    p, out = counting
    p.send_signal(signal.SIGINT)
    p.wait(10)
    counts = {}
    if os.path.exists(out):
        for line in open(out):
            f = line.strip().split(",")
            if len(f) > 2 and f[0].isdigit():
                counts[f[2].split(":")[-1]] = int(f[0])
        os.unlink(out)
    return counts

def config(log_dir, variant):
    log = {"off": "",
           "json": f"access_log {log_dir}/access.log;",
           "nginx": f"log_format main '$remote_addr [$time_local] $protocol $status $bytes_sent $bytes_received "
                    f"$session_time \"$upstream_addr\" \"$upstream_bytes_sent\" \"$upstream_bytes_received\" \"$upstream_connect_time\"';\n"
                    f"access_log {log_dir}/access-nginx.log main;"}[variant]
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in BACKENDS)
    return f"""worker_rlimit_nofile 20000;
error_log stderr warn;
stream {{
    upstream b {{
        least_conn;
{servers}
    }}
    {log}
    server {{
        listen 127.0.0.1:{FRONT} backlog=4096;
        proxy_pass b;
        proxy_connect_timeout 10s;
    }}
}}
"""

def run_once(ferry, variant, secs):
    d = tempfile.mkdtemp(prefix=f"ferry-logcost-{variant}-")
    conf = os.path.join(d, "ferry.conf")
    open(conf, "w").write(config(d, variant))
    p = subprocess.Popen(["taskset", "-c", "1", ferry, "-c", conf], stderr=subprocess.DEVNULL)
    try:
        if not wait_port(FRONT): sys.exit(f"ferry ({variant}) did not listen")
        counting = start_counting(p.pid)
        c0 = cpu_ticks(p.pid)
        out = subprocess.run(["taskset", "-c", "0", tool("loadgen"), "conn", "-p", str(FRONT), "-c", "32", "-q", "200", "-r", "40",
                              "-b", "-d", str(secs)], capture_output=True, text=True)
        cpu = (cpu_ticks(p.pid) - c0) / TICK
        counts = stop_counting(counting)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        p.terminate(); p.wait(10)
    lines = 0
    for name in ("access.log", "access-nginx.log"):
        path = os.path.join(d, name)
        if os.path.exists(path): lines += sum(1 for _ in open(path))
    subprocess.run(["rm", "-rf", d])
    ops = max(1, r["ops"])
    # Both counts or neither: without the kernel's (perf_event_paranoid >= 2) a total would be wrong.
    both = "u" in counts and "k" in counts
    return {"conn_s": r["ops_s"], "cpu_us": cpu * 1e6 / ops, "errors": r["errors"], "ops": r["ops"], "lines": lines,
            "user_instr": counts["u"] / ops if both else 0, "kernel_instr": counts["k"] / ops if both else 0}

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
    return 0

def hold_bytes_per_conn(ferry, n):
    """Userspace memory per idle session with the connection log on (what compare.py's hold measures)."""
    d = tempfile.mkdtemp(prefix="ferry-logcost-hold-")
    conf = os.path.join(d, "ferry.conf")
    open(conf, "w").write(config(d, "json"))
    p = subprocess.Popen(["taskset", "-c", "1", ferry, "-c", conf], stderr=subprocess.DEVNULL)
    try:
        if not wait_port(FRONT): sys.exit("ferry (hold) did not listen")
        time.sleep(0.3)
        base = rss_kb(p.pid)
        lg = subprocess.Popen(["taskset", "-c", "0", tool("loadgen"), "hold", "-p", str(FRONT), "-c", str(n), "-t", "5000", "-q", "200",
                               "-r", "40", "-b", "-d", "10"], stdout=subprocess.PIPE, text=True)
        time.sleep(8)
        peak = rss_kb(p.pid)
        lg.communicate()
    finally:
        p.terminate(); p.wait(10)
        subprocess.run(["rm", "-rf", d])
    return round((peak - base) * 1024 / n)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry-bin", default=os.path.join(ROOT, ".build/release/ferry"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=5)
    ap.add_argument("--variants", default="off,json,nginx")
    ap.add_argument("--hold", type=int, default=4000, help="idle connections for the memory check (0: skip)")
    a = ap.parse_args()
    variants = a.variants.split(",")
    backends = [subprocess.Popen(["taskset", "-c", "0", tool("echod"), "-p", str(p), "-i", f"b{i+1}", "-b", "-q", "200", "-r", "40"])
                for i, p in enumerate(BACKENDS)]
    results = {v: [] for v in variants}
    try:
        for p in BACKENDS: wait_port(p)
        for rnd in range(a.rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for v in order:
                r = run_once(a.ferry_bin, v, a.secs)
                results[v].append(r)
                print(f"round {rnd + 1} {v:5s}: {r['conn_s']:8.0f} conn/s  {r['cpu_us']:6.1f} us cpu/conn  "
                      f"{r['user_instr'] + r['kernel_instr']:,.0f} instructions/conn  errors {r['errors']}  log lines {r['lines']} of {r['ops']}",
                      file=sys.stderr, flush=True)
                time.sleep(0.5)
        held = hold_bytes_per_conn(a.ferry_bin, a.hold) if a.hold else None
    finally:
        for b in backends: b.kill()
    keys = ("conn_s", "cpu_us", "user_instr", "kernel_instr")
    med = {v: {k: statistics.median(r[k] for r in results[v]) for k in keys} for v in variants}
    print(f"rounds={a.rounds} secs={a.secs} (medians)")
    print("| connection log | conn/s | ferry cpu us/conn | conn/s cost | cpu cost | instructions/conn (user + kernel) | instruction cost |")
    print("|---|---|---|---|---|---|---|")
    base = med[variants[0]]
    for v in variants:
        m = med[v]
        rate_cost = (base["conn_s"] - m["conn_s"]) / base["conn_s"] * 100
        cpu_cost = (m["cpu_us"] - base["cpu_us"]) / base["cpu_us"] * 100
        total, base_total = m["user_instr"] + m["kernel_instr"], base["user_instr"] + base["kernel_instr"]
        instr = f"{total:,.0f} ({m['user_instr']:,.0f} + {m['kernel_instr']:,.0f})" if total else "- (no perf)"
        instr_cost = f"{(total - base_total) / base_total * 100:+.1f}%" if total and base_total else "-"
        print(f"| {v} | {m['conn_s']:.0f} | {m['cpu_us']:.1f} | {rate_cost:+.1f}% | {cpu_cost:+.1f}% | {instr} | {instr_cost} |")
    if held is not None:
        print(f"idle sessions with the connection log on: {held} bytes of userspace RSS each ({a.hold} held)")

if __name__ == "__main__":
    main()
