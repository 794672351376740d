#!/usr/bin/env python3
"""Does active health checking cost the relay anything? ferry's small-message relay rate
(loadgen rr: 100 connections, 200-byte requests, 40-byte replies) with and without a second
upstream of 1,000 servers probed every second (TCP connect, closed with a reset).

ferry is pinned to CPU 1, the load generator and both echod processes to CPU 0, as in the
shared yardstick. Runs alternate (without, with, without, ...) so drift on a shared machine
hits both sides; medians are reported. The probe rate actually reached is read from the
kernel's TCP ActiveOpens counter (system-wide, so other work on the machine adds to it).

  bench/health-probe.py --ferry-bin .build/release/ferry [--rounds 3] [--secs 5] [--servers 1000]
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("FERRY_SHARED_BENCH") or os.path.join(ROOT, "..", "shared", "bench")
BIN = os.path.join(ROOT, "bench", "out")
FRONT, BACKEND, TARGET = 12100, 19101, 19102


def build_tools():
    os.makedirs(BIN, exist_ok=True)
    for tool in ("loadgen", "echod"):
        src, exe = os.path.join(SHARED, tool + ".c"), os.path.join(BIN, tool)
        if not os.path.exists(src):
            sys.exit(f"health-probe: {src} not found; set FERRY_SHARED_BENCH to the shared bench directory")
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)


def wait_listening(port, t=10):
    want = f"0100007F:{port:04X}"
    end = time.time() + t
    while time.time() < end:
        with open("/proc/net/tcp") as f:
            if any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:]):
                return True
        time.sleep(0.05)
    return False


def active_opens():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def config(probed, servers):
    text = f"""stream {{
    upstream relay {{ server 127.0.0.1:{BACKEND}; }}
    server {{ listen 127.0.0.1:{FRONT}; proxy_pass relay; proxy_timeout 1m; }}
"""
    if probed:
        lines = "\n".join(f"        server 127.0.0.1:{TARGET} name=p{i};" for i in range(servers))
        text += f"""    upstream probed {{
{lines}
        health_check interval=1s fails=2 passes=2 timeout=1s;
    }}
"""
    return text + "}\n"


def run_once(ferry_bin, probed, servers, secs):
    d = tempfile.mkdtemp(prefix="ferry-health-bench-")
    conf = os.path.join(d, "ferry.conf")
    open(conf, "w").write(config(probed, servers))
    err = open(os.path.join(d, "stderr.log"), "w")
    ferry = subprocess.Popen(["taskset", "-c", "1", ferry_bin, "-c", conf], stdout=subprocess.DEVNULL, stderr=err)
    try:
        if not wait_listening(FRONT):
            sys.exit(f"health-probe: ferry did not listen; see {d}/stderr.log")
        time.sleep(1.5)  # probes spread over their first interval before measuring
        opens = active_opens()
        t0 = time.time()
        out = subprocess.run(["taskset", "-c", "0", os.path.join(BIN, "loadgen"), "rr", "-p", str(FRONT), "-c", "100",
                              "-q", "200", "-r", "40", "-b", "-d", str(secs)], capture_output=True, text=True, timeout=secs + 30)
        elapsed = time.time() - t0
        opens = active_opens() - opens
        r = json.loads(out.stdout.strip().splitlines()[-1])
        log = open(os.path.join(d, "stderr.log")).read()
        r["connects_s"] = opens / elapsed
        r["state_changes"] = log.count('"event":"server_state"')
        return r
    finally:
        ferry.terminate()
        try:
            ferry.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ferry.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry-bin", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=5)
    ap.add_argument("--servers", type=int, default=1000)
    a = ap.parse_args()
    build_tools()
    echod = os.path.join(BIN, "echod")
    backends = [subprocess.Popen(["taskset", "-c", "0", echod, "-p", str(BACKEND), "-i", "b1", "-b", "-q", "200", "-r", "40"]),
                subprocess.Popen(["taskset", "-c", "0", echod, "-p", str(TARGET), "-i", "probe"])]
    try:
        for p in (BACKEND, TARGET):
            if not wait_listening(p):
                sys.exit(f"health-probe: echod did not listen on {p}")
        results = {False: [], True: []}
        for rnd in range(a.rounds):
            for probed in (False, True) if rnd % 2 == 0 else (True, False):
                r = run_once(os.path.abspath(a.ferry_bin), probed, a.servers, a.secs)
                results[probed].append(r)
                print(f"round {rnd + 1} {'with' if probed else 'without'} probes: {r['ops_s']:.0f} msg/s, "
                      f"p99 {r['p99_us']} us, errors {r['errors']}, {r['connects_s']:.0f} connects/s system-wide, "
                      f"{r['state_changes']} state changes", file=sys.stderr, flush=True)
        base = statistics.median(r["ops_s"] for r in results[False])
        with_probes = statistics.median(r["ops_s"] for r in results[True])
        probe_rate = statistics.median(r["connects_s"] - b["connects_s"] for r, b in zip(results[True], results[False]))
        summary = {
            "servers": a.servers, "rounds": a.rounds, "secs": a.secs,
            "rr_msg_s_without": round(base), "rr_msg_s_with": round(with_probes),
            "change_pct": round(100 * (with_probes - base) / base, 2),
            "probes_s": round(probe_rate),
            "p99_us_without": statistics.median(r["p99_us"] for r in results[False]),
            "p99_us_with": statistics.median(r["p99_us"] for r in results[True]),
            "errors": sum(r["errors"] for rs in results.values() for r in rs),
            "state_changes_with": sum(r["state_changes"] for r in results[True]),
        }
        print(json.dumps(summary))
        print(f"relay rate without probes {base:.0f} msg/s, with {a.servers} servers probed every second "
              f"{with_probes:.0f} msg/s ({summary['change_pct']:+.2f}%); about {probe_rate:.0f} probes/s", file=sys.stderr)
    finally:
        for b in backends:
            b.terminate()
            b.wait()


if __name__ == "__main__":
    main()
