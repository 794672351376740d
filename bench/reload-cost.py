#!/usr/bin/env python3
"""How long a big upstream holds the event loop on the cold paths: a reload, a runtime weight
change, and a reload that carries runtime weights over. ferry runs with one upstream of N
servers (127.x addresses that are never connected to) and an admin socket; the figures are the
admin client's wall time, during which ferry relays nothing.

  bench/reload-cost.py --ferry-bin .build/release/ferry [--servers 10000,500] [--rounds 3]

For each method (least_conn, hash $remote_addr consistent) it prints medians of: a reload
with nothing to carry, the cost of one `set server ... weight` (N of them, raising every
server above its configured 1-5), and a reload that carries those N weights. A weight change
reaches a consistent-hash ring at the next selection (once for all changes since), so the
middle column is the admin command's own cost; the ring's catch-up is paid by the next new
session, at most one ring update however many changes came before it.
"""
import argparse, os, socket, statistics, subprocess, sys, tempfile, time

METHODS = [("least_conn", "least_conn;"), ("consistent", "hash $remote_addr consistent;")]


def config(path, sock, servers, method):
    with open(path, "w") as f:
        f.write(f"admin_socket {sock};\nstream {{\n    upstream big {{\n        {method}\n")
        for i in range(servers):
            f.write(f"        server 127.{1 + i // 65536}.{i // 256 % 256}.{i % 256}:{1024 + i % 60000}"
                    f" weight={1 + i % 5} name=s{i};\n")
        f.write("    }\n    server { listen 127.0.0.1:23999; proxy_pass big; }\n}\n")


def admin(sock, lines, timeout=600):
    """Sends `lines` in prompt mode and waits for the close after `quit`; returns seconds."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    start = time.monotonic()
    s.sendall(b"prompt\n" + b"".join(l.encode() + b"\n" for l in lines) + b"quit\n")
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    elapsed = time.monotonic() - start
    if b"reload" in " ".join(lines).encode() and b"Configuration reloaded" not in reply:
        sys.exit(f"reload failed: {reply[-200:]!r}")
    return elapsed


def measure(ferry, servers, method, tmp):
    sock = os.path.join(tmp, "admin.sock")
    conf = os.path.join(tmp, "ferry.conf")
    config(conf, sock, servers, method)
    proc = subprocess.Popen([ferry, "-c", conf], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sock):
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("ferry did not open its admin socket")
            time.sleep(0.05)
        plain = admin(sock, ["reload"])
        raise_all = admin(sock, [f"set server big/s{i} weight 7" for i in range(servers)])
        carried = admin(sock, ["reload"])
        return plain, raise_all / servers, carried
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry-bin", required=True)
    ap.add_argument("--servers", default="10000,500")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{'servers':>8} {'method':<11} {'reload ms':>10} {'1 weight ms':>12} {'reload+weights ms':>18}")
    with tempfile.TemporaryDirectory(prefix="ferry-reload-") as tmp:
        for servers in [int(n) for n in args.servers.split(",")]:
            for name, method in METHODS:
                runs = [measure(args.ferry_bin, servers, method, tmp) for _ in range(args.rounds)]
                med = [statistics.median(r[k] for r in runs) * 1000 for k in range(3)]
                print(f"{servers:>8} {name:<11} {med[0]:>10.1f} {med[1]:>12.2f} {med[2]:>18.1f}", flush=True)


if __name__ == "__main__":
    main()
