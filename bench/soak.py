#!/usr/bin/env python3
"""Chaos soak for ferry: a release ferry on 127.0.0.1 in front of several upstreams, held
for SOAK_SECONDS under random, concurrent trouble, with invariants checked all along and
at the end. Loopback only; every loop is bounded in count and time.

  bench/soak.py [--seconds 300] [--clients 1200] [--seed N] [--ferry-bin .build/release/ferry]

What runs at once:
  - ~N long CCcam-like sessions (banner first, then a framed request every 2-6 s, each answer
    checked: right bytes, from the backend the session is attached to) plus short sessions;
  - backends killed and restarted, or black-holed (SIGSTOP: the kernel still completes
    handshakes, nothing is read or answered) and resumed;
  - agents flapping between up/down/drain/ready/N%/maxconn:N and garbage;
  - admin commands (weight, state, shutdown sessions, add/del server, show stat/sessions),
    valid and invalid;
  - SIGHUP (or admin `reload`) reloads alternating two valid configs (servers, weights and a
    listener added and removed), now and then an invalid one;
  - floods toward ferry's capacity (worker_rlimit_nofile keeps it low), garbage bytes,
    half-closes, resets, pipelined bulk with stalled readers, bursts past limit_conn;
  - the admin socket's 64 and the metrics endpoint's 16 client slots filled with idle
    connections; the access log rotated (rename + SIGUSR1).

Invariants (a violation is printed at once and makes the exit status 1):
  - ferry stays alive; no 15 s window near 100% CPU; idle CPU at the end under 5%;
  - show stat's scur per server equals show sessions' lines for it (one snapshot);
  - a session never lands on a server that the admin socket put in drain/maint/weight 0
    (from the acknowledgement to the command that undid it);
  - a server with max_conns=K never holds more than K connections (counted at the backend);
  - a session on a backend nothing disturbed is never dropped, and every answer is right;
  - a client refused before any backend spoke gets a FIN, not a reset, unless a backend was
    being disturbed at the time;
  - the admin socket and metrics answer again 1 s after their slots were filled;
  - at the end, with every client gone: every listener serves; 0 sessions in show stat, show
    sessions and metrics; the fd count back to the baseline (plus pooled pipes); one valid JSON
    access-log line per accepted connection, per listener, across rotated files; one
    reload_failed per invalid file; RSS not more than 2x + 40 MB of what it was after warm-up.

This is not part of `make test` (it takes minutes); run it with `make soak`.
"""
import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


# ---------------------------------------------------------------- backend process

async def backend_main(port: int, name: str, stats_path: str, limit: int) -> None:
    """A CCcam-like backend: 16-byte banner "ID:<name>", then answers each frame
    (2-byte length + payload) with a frame of its name (8 bytes) + the payload."""
    st = {"cur": 0, "accepted": 0, "violations": 0, "peak": 0, "detail": []}
    banner = f"ID:{name}".ljust(15).encode()[:15] + b"\n"
    tag = name.encode().ljust(8)[:8]

    async def recheck(seen: int) -> None:
        # Closes ferry made may still be queued behind the accept: judge only a lasting excess.
        await asyncio.sleep(0.7)
        if st["cur"] > limit:
            st["violations"] += 1
            if len(st["detail"]) < 20:
                st["detail"].append({"t": time.time(), "seen": seen, "after_0.7s": st["cur"], "limit": limit})

    async def serve(r, w):
        st["cur"] += 1
        st["accepted"] += 1
        st["peak"] = max(st["peak"], st["cur"])
        if limit and st["cur"] > limit:
            asyncio.ensure_future(recheck(st["cur"]))
        try:
            w.write(banner)
            while True:
                hdr = await r.readexactly(2)
                n = int.from_bytes(hdr, "big")
                body = await r.readexactly(n)
                reply = tag + body
                w.write(len(reply).to_bytes(2, "big") + reply)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            st["cur"] -= 1
            try:
                w.close()
            except Exception:
                pass

    async def dump():
        while True:
            tmp = stats_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, stats_path)
            await asyncio.sleep(0.5)

    raise_nofile()
    server = await asyncio.start_server(serve, HOST, port, backlog=256, reuse_address=True)
    asyncio.ensure_future(dump())
    async with server:
        await server.serve_forever()


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_ports(n: int) -> list:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------- soak

class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.dir = tempfile.mkdtemp(prefix="ferry-soak-")
        self.t0 = time.monotonic()
        self.violations = []
        self.stats = {k: 0 for k in [
            "sessions_started", "sessions_banner", "sessions_ok", "requests_ok", "short_sessions",
            "garbage_clients", "resets_sent", "half_closes", "refused_clean", "refused_reset",
            "dropped_expected", "connect_timeouts", "reloads_valid", "reloads_invalid",
            "admin_commands", "admin_invalid", "admin_errors_seen", "agent_flaps", "kills",
            "blackholes", "floods", "flood_clients", "consistency_checks", "metrics_scrapes",
            "routing_checked", "connects_ok", "bursts", "bulk_sessions", "deleted_config_servers", "admin_reloads", "admin_floods", "metrics_floods", "log_rotations", "stalled_readers"]}
        self.cpu_samples = []
        self.rss_samples = []
        # backend name -> list of [start, end|None]: kills, black holes, shutdown sessions.
        self.disturbed = {}
        # server name -> list of [ack_time, undo_send_time|None, reason]
        self.ineligible = {}
        self.admin_state = {}     # server -> (kind) currently imposed by us: "drain"/"maint"/"weight0"
        self.live_clients = 0
        self.stopping = False
        self.ferry = None
        self.backends = {}        # name -> dict(port, proc, state)
        self.agent_reply = {}     # agent name -> bytes
        self.added = set()        # servers we added with `add server`
        self.agent_down_entry = {}
        self.rotated = 0
        self.admin_flooding = False
        self.metrics_flooding = False
        self.deleted = {}         # config server deleted with `del server` -> its open ineligible entry
        self.valid_reload_sent_at = -1.0   # when the last valid reload was sent
        self.config_index = 0
        self.log_lines_expected_min = 0

    # ---- time and reporting
    def now(self) -> float:
        return time.monotonic() - self.t0

    def violation(self, what: str) -> None:
        msg = f"[{self.now():7.1f}s] VIOLATION {what}"
        print(msg, flush=True)
        if len(self.violations) < 500:
            self.violations.append(msg)

    def note(self, what: str) -> None:
        if self.args.verbose:
            print(f"[{self.now():7.1f}s] {what}", flush=True)

    # ---- layout
    def plan(self) -> None:
        names = ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "c1", "c2", "c3", "x1"]
        ports = free_ports(len(names) + 5 + 4 + 1)
        for n in names:
            self.backends[n] = {"port": ports.pop(), "proc": None, "state": "down"}
        self.listen = {"ua": ports.pop(), "ub": ports.pop(), "uc": ports.pop(), "ud": ports.pop(), "ue": ports.pop()}
        # listener -> upstream it proxies to; ud is uc behind limit_conn perip 4
        self.listen_up = {"ua": "ua", "ub": "ub", "uc": "uc", "ud": "uc", "ue": "ub"}
        self.agent_ports = {"a1": ports.pop(), "a2": ports.pop(), "steady": ports.pop(), "spare": ports.pop()}
        self.metrics_port = ports.pop()
        self.agent_reply = {"a1": b"up ready 100%\n", "a2": b"up ready 100%\n", "steady": b"up\n", "spare": b"up\n"}
        self.admin = os.path.join(self.dir, "admin.sock")
        self.conf = os.path.join(self.dir, "ferry.conf")
        self.access = os.path.join(self.dir, "access.log")
        self.events = os.path.join(self.dir, "events.log")
        self.limits = {"a3": 40}
        # Which upstream each server is in (for checks) and which may be admin-targeted.
        self.upstream_of = {n: "u" + n[0] for n in names if n != "x1"}
        self.upstream_of["x1"] = "ub"
        # drain/maint kept across reloads for servers never removed from the file;
        # weight 0 only where neither an agent nor a reload can change the weight.
        self.drain_targets = ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3"]
        self.weight0_targets = ["a3", "c1", "c2", "c3"]

    def config_text(self, variant: int) -> str:
        b = self.backends
        a = self.agent_ports
        s = lambda n: f"{HOST}:{b[n]['port']}"
        if variant == 0:
            ub = (f"        server {s('b1')} weight=3 name=b1;\n"
                  f"        server {s('b2')} weight=2 name=b2;\n"
                  f"        server {s('b3')} weight=1 name=b3;\n")
            a1w = 2
        else:
            ub = (f"        server {s('b1')} weight=1 name=b1;\n"
                  f"        server {s('b2')} weight=4 name=b2;\n"
                  f"        server {s('b4')} weight=2 name=b4;\n")
            a1w = 3
        # A listener only variant 1 has: reloads open and close it under its sessions.
        extra = f"    server {{ listen {HOST}:{self.listen['ue']}; proxy_pass ub; }}\n" if variant == 1 else ""
        return f"""# ferry soak, variant {variant}
worker_rlimit_nofile {self.args.nofile};
error_log {self.events} info;
admin_socket {self.admin} mode=0600;
metrics_listen {HOST}:{self.metrics_port};
pid {self.dir}/ferry.pid;
worker_shutdown_timeout 5s;
stream {{
    access_log {self.access};
    proxy_connect_timeout 2s;
    proxy_timeout 2m;
    upstream ua {{
        least_conn;
        server {s('a1')} weight={a1w} name=a1 agent_port={a['a1']};
        server {s('a2')} weight=2 name=a2 agent_port={a['a2']};
        server {s('a3')} weight=2 max_conns={self.limits['a3']} name=a3;
        server {s('a4')} backup name=a4;
        health_check interval=1s fails=2 passes=2 timeout=1s;
        agent_check port={a['steady']} interval=1s timeout=1s;
        on_marked_down shutdown_sessions;
    }}
    upstream ub {{
{ub}        health_check interval=1s fails=2 passes=1 timeout=1s;
    }}
    upstream uc {{
        hash $remote_addr consistent;
        server {s('c1')} name=c1;
        server {s('c2')} name=c2;
        server {s('c3')} name=c3;
        health_check interval=1s fails=2 passes=1 timeout=1s;
    }}
    server {{ listen {HOST}:{self.listen['ua']}; proxy_pass ua; }}
    server {{ listen {HOST}:{self.listen['ub']}; proxy_pass ub; }}
    server {{ listen {HOST}:{self.listen['uc']}; proxy_pass uc; }}
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server {{ listen {HOST}:{self.listen['ud']}; proxy_pass uc; limit_conn perip 4; }}
{extra}}}
"""

    def invalid_config_text(self) -> str:
        good = self.config_text(self.config_index)
        choice = self.rng.randrange(4)
        if choice == 0:
            return good.replace("weight=2 name=a2", "wieght=2 name=a2")
        if choice == 1:
            return good.replace("least_conn;", "least_conn;\n        server 127.0.0.1:99999 name=bad;")
        if choice == 2:
            return good[: len(good) // 2]          # cut off: unbalanced braces
        return good.replace("proxy_timeout 2m;", "proxy_timeout 2m;\n    frobnicate on;")

    def write_config(self, text: str) -> None:
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    # ---- processes
    async def start_backend(self, name: str) -> None:
        be = self.backends[name]
        stats = os.path.join(self.dir, f"be-{name}.json")
        be["proc"] = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--backend", str(be["port"]), name, stats,
            str(self.limits.get(name, 0)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        be["state"] = "up"
        be["stats"] = stats
        for _ in range(50):
            if os.path.exists(stats):
                try:
                    s = json.load(open(stats))
                    if s["accepted"] >= 0:
                        break
                except (ValueError, OSError):
                    pass
            await asyncio.sleep(0.1)
        # a fresh backend starts its counters at zero; keep the old ones
        be.setdefault("history", []).append(None)

    def backend_stats(self, name: str):
        try:
            return json.load(open(self.backends[name]["stats"]))
        except (ValueError, OSError, KeyError):
            return None

    async def start_agents(self) -> None:
        self.agent_servers = []
        for key, port in self.agent_ports.items():
            async def serve(r, w, key=key):
                try:
                    w.write(self.agent_reply[key])
                    await w.drain()
                except (ConnectionError, OSError):
                    pass
                finally:
                    w.close()
            self.agent_servers.append(await asyncio.start_server(serve, HOST, port))

    def start_ferry(self) -> None:
        self.write_config(self.config_text(0))
        self.ferry_err = open(os.path.join(self.dir, "stderr.log"), "w")
        self.ferry = subprocess.Popen([self.args.ferry_bin, "-c", self.conf],
                                      stdout=subprocess.DEVNULL, stderr=self.ferry_err)
        self.pid = self.ferry.pid

    def ferry_alive(self) -> bool:
        return self.ferry.poll() is None

    # ---- /proc samples
    def cpu_ticks(self) -> int:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    # ---- admin socket and metrics
    async def admin_cmd(self, line: str, timeout: float = 10.0) -> str:
        for _ in range(40):
            try:
                answer = await self.admin_once(line, timeout)
            except (OSError, asyncio.TimeoutError):
                if not self.admin_flooding:
                    raise
                answer = "Too many admin connections"
            if not answer.startswith("Too many admin connections"):
                return answer
            await asyncio.sleep(0.25)
        return answer

    async def admin_once(self, line: str, timeout: float) -> str:
        r, w = await asyncio.wait_for(asyncio.open_unix_connection(self.admin), timeout)
        try:
            w.write(line.encode() + b"\n")
            await w.drain()
            data = await asyncio.wait_for(r.read(-1), timeout)
            return data.decode(errors="replace")
        finally:
            w.close()

    async def metrics(self) -> dict:
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, self.metrics_port), 5)
        try:
            w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(r.read(-1), 10)
        finally:
            w.close()
        text = data.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        if not head.startswith("HTTP/1.1 200"):
            raise RuntimeError(f"metrics answered {head.splitlines()[:1]}")
        out = {}
        for line in body.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                v = float(value)
            except ValueError:
                self.violation(f"metrics: unparsable line {line!r}")
                continue
            base = name.split("{", 1)[0]
            out[base] = out.get(base, 0.0) + v
            out[name] = v
        return out

    @staticmethod
    def parse_stat(text: str):
        lines = [l for l in text.splitlines()]
        try:
            start = next(i for i, l in enumerate(lines) if l.startswith("# pxname,"))
        except StopIteration:
            return None
        header = lines[start][2:].split(",")
        rows = []
        for l in lines[start + 1:]:
            if not l.strip():
                break
            rows.append(dict(zip(header, l.split(","))))
        return rows

    @staticmethod
    def parse_sessions(text: str):
        lines = text.splitlines()
        try:
            start = next(i for i, l in enumerate(lines) if l.startswith("# ") and " client backend " in l)
        except StopIteration:
            return None
        names = lines[start][2:].split()
        out = []
        for l in lines[start + 1:]:
            if not l.strip():
                break
            out.append(dict(zip(names, l.split())))
        return out

    # ---- intervals
    def mark(self, table: dict, name: str, start: float, end=None, reason: str = "") -> list:
        entry = [start, end, reason]
        table.setdefault(name, []).append(entry)
        return entry

    def was_disturbed(self, name: str, t_from: float, t_to: float, grace: float = 3.0) -> bool:
        for s, e, _ in self.disturbed.get(name, []):
            end = (e if e is not None else float("inf")) + grace
            if s <= t_to and end >= t_from:
                return True
        return False

    def any_disturbed(self, t_from: float, t_to: float) -> bool:
        return any(self.was_disturbed(n, t_from, t_to) for n in self.disturbed)

    def check_routing(self, server: str, t_connect: float, t_banner: float) -> None:
        self.stats["routing_checked"] += 1
        for ack, undo, reason in self.ineligible.get(server, []):
            end = undo if undo is not None else float("inf")
            if ack <= t_connect and t_banner <= end:
                self.violation(f"session routed to {server} while {reason} (acknowledged at {ack:.1f}s, "
                               f"session connected at {t_connect:.1f}s, banner at {t_banner:.1f}s)")
                return

    # ---- clients
    async def client(self, upstream: str, kind: str, lifetime: float, src: str = "") -> None:
        """One client session; kind is long, short, half, reset, garbage."""
        self.stats["sessions_started"] += 1
        src = src or f"127.0.{self.rng.randrange(0, 4)}.{self.rng.randrange(2, 250)}"
        port = self.listen[upstream]
        t_start = self.now()
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(HOST, port, local_addr=(src, 0)), 10)
        except (asyncio.TimeoutError, OSError):
            self.stats["connect_timeouts"] += 1
            return
        self.stats["connects_ok"] += 1
        self.live_clients += 1
        sock = w.get_extra_info("socket")
        server = None
        try:
            if kind == "garbage":
                self.stats["garbage_clients"] += 1
                w.write(os.urandom(self.rng.randrange(1, 400)))
                await asyncio.sleep(self.rng.random() * 0.5)
                if self.rng.random() < 0.5:
                    self.reset(sock)
                return
            if kind == "reset":
                self.stats["resets_sent"] += 1
                if self.rng.random() < 0.5:
                    await asyncio.sleep(self.rng.random() * 0.3)
                self.reset(sock)
                return
            try:
                banner = await asyncio.wait_for(r.readexactly(16), 15)
            except asyncio.IncompleteReadError as e:
                self.refused(e.partial, t_start, reset=False)
                return
            except ConnectionResetError:
                self.refused(b"", t_start, reset=True)
                return
            except asyncio.TimeoutError:
                # Waiting in the backlog at capacity, or a black-holed backend: not a refusal.
                self.stats["connect_timeouts"] += 1
                return
            t_banner = self.now()
            if not banner.startswith(b"ID:"):
                self.violation(f"bad banner {banner!r} on {upstream}")
                return
            server = banner[3:].decode(errors="replace").strip()
            if self.upstream_of.get(server) != self.listen_up[upstream]:
                self.violation(f"client of {upstream} got banner of {server}")
                return
            self.stats["sessions_banner"] += 1
            self.check_routing(server, t_start, t_banner)
            if kind == "half":
                self.stats["half_closes"] += 1
                w.write_eof()
                rest = await asyncio.wait_for(r.read(-1), 15)
                if rest:
                    self.violation(f"half-closed client on {server} got {len(rest)} stray bytes")
                return
            if kind == "bulk":
                frames = [os.urandom(self.rng.randrange(16_000, 65_000)) for _ in range(self.rng.randrange(5, 30))]
                async def send_all():
                    for p in frames:
                        w.write(len(p).to_bytes(2, "big") + p)
                        await w.drain()
                sender = asyncio.ensure_future(send_all())
                if self.rng.random() < 0.3:
                    self.stats["stalled_readers"] += 1
                    await asyncio.sleep(self.rng.uniform(1, 6))    # buffers fill both ways
                try:
                    for p in frames:
                        hdr = await asyncio.wait_for(r.readexactly(2), 20)
                        body = await asyncio.wait_for(r.readexactly(int.from_bytes(hdr, "big")), 20)
                        if body[:8].rstrip() != server.encode() or body[8:] != p:
                            self.violation(f"wrong bulk answer on {server}: {len(body)} bytes for {len(p)}")
                            return
                    await asyncio.wait_for(sender, 20)
                finally:
                    sender.cancel()
                self.stats["bulk_sessions"] += 1
                return
            deadline = self.now() + lifetime
            n = 0
            while not self.stopping and self.now() < deadline and n < 1000:
                n += 1
                payload = os.urandom(self.rng.randrange(100, 400))
                w.write(len(payload).to_bytes(2, "big") + payload)
                await w.drain()
                hdr = await asyncio.wait_for(r.readexactly(2), 15)
                body = await asyncio.wait_for(r.readexactly(int.from_bytes(hdr, "big")), 15)
                if body[:8].rstrip() != server.encode() or body[8:] != payload:
                    self.violation(f"wrong answer on {server}: {body[:12]!r}... ({len(body)} bytes, sent {len(payload)})")
                    return
                self.stats["requests_ok"] += 1
                if kind == "short":
                    break
                await asyncio.sleep(self.rng.uniform(2, 6))
            self.stats["sessions_ok"] += 1
            if kind == "short":
                self.stats["short_sessions"] += 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, OSError) as e:
            t_end = self.now()
            if server is None:
                return
            if self.was_disturbed(server, t_start, t_end):
                self.stats["dropped_expected"] += 1
            else:
                self.violation(f"healthy session on {server} ({upstream}) dropped after "
                               f"{t_end - t_start:.1f}s: {type(e).__name__} {e}")
        finally:
            self.live_clients -= 1
            try:
                w.close()
            except Exception:
                pass

    def refused(self, partial: bytes, t_start: float, reset: bool) -> None:
        t = self.now()
        if partial:
            self.violation(f"partial banner {partial!r} then end")
        elif not reset:
            self.stats["refused_clean"] += 1
        elif self.any_disturbed(t_start, t):
            self.stats["refused_clean"] += 1    # a backend's reset relayed as a reset
        else:
            self.stats["refused_reset"] += 1
            self.violation("client refused with a reset while no backend was disturbed")

    @staticmethod
    def reset(sock) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    async def population(self) -> None:
        """Keeps ~clients long sessions alive, replacing those that end."""
        tasks = set()
        ups = ["ua", "ub", "uc"]
        spawned = 0
        while not self.stopping and spawned < 10_000_000:
            want = self.args.clients - len(tasks)
            for _ in range(min(want, 100)):
                t = asyncio.ensure_future(self.client(self.rng.choice(ups), "long", self.rng.uniform(20, 150)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                spawned += 1
            await asyncio.sleep(0.2)
        if tasks:
            await asyncio.wait(tasks, timeout=40)

    async def churn(self) -> None:
        """Short sessions, half-closes, resets and garbage, a few per second."""
        tasks = set()
        n = 0
        while not self.stopping and n < 1_000_000:
            n += 1
            kind = self.rng.choices(["short", "half", "reset", "garbage", "burst", "bulk", "ue"], [6, 2, 1, 1, 0.3, 0.5, 0.5])[0]
            if kind == "burst" and len(tasks) < 200:
                # limit_conn perip 4: of 8 held at once from one address, 4 are refused cleanly
                src = f"127.0.8.{self.rng.randrange(2, 250)}"
                self.stats["bursts"] += 1
                for _ in range(8):
                    t = asyncio.ensure_future(self.client("ud", "long", self.rng.uniform(3, 8), src))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            elif kind == "ue" and len(tasks) < 200:
                t = asyncio.ensure_future(self.client("ue", "long", self.rng.uniform(5, 60)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            elif len(tasks) < 200:
                t = asyncio.ensure_future(self.client(self.rng.choice(["ua", "ub", "uc"]), kind, 0))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))
        if tasks:
            await asyncio.wait(tasks, timeout=40)

    # ---- chaos
    async def backend_chaos(self) -> None:
        while not self.stopping:
            await self.pause(6, 15)
            if self.stopping:
                break
            name = self.rng.choice(list(self.backends))
            be = self.backends[name]
            if be["state"] != "up":
                continue
            if self.rng.random() < 0.5:
                self.stats["kills"] += 1
                entry = self.mark(self.disturbed, name, self.now(), None, "killed")
                be["state"] = "killed"
                be["proc"].kill()
                await be["proc"].wait()
                self.note(f"killed {name}")
                await self.pause(2, 8)
                await self.start_backend(name)
            else:
                self.stats["blackholes"] += 1
                entry = self.mark(self.disturbed, name, self.now(), None, "black hole")
                be["state"] = "stopped"
                be["proc"].send_signal(signal.SIGSTOP)
                self.note(f"black-holed {name}")
                await self.pause(3, 12)
                be["proc"].send_signal(signal.SIGCONT)
                be["state"] = "up"
            entry[1] = self.now()

    async def agent_chaos(self) -> None:
        replies = [b"up\n", b"down\n", b"drain\n", b"ready\n", b"50%\n", b"up ready 75%\n",
                   b"maxconn:5\n", b"maxconn:0\n", b"weight:10\n", b"bogus words\n", b"\n",
                   b"up", b"\x00up\n", b"x" * 2000 + b"\n", b"up ready 100% maxconn:0\n",
                   b"stopped # maintenance\n", b"weight:999\n", b"-5%\n", b"maint\n"]
        while not self.stopping:
            await self.pause(1, 4)
            key = self.rng.choice(["a1", "a2"])
            reply = self.rng.choice(replies)
            now = self.now()
            open_entry = self.agent_down_entry.get(key)
            is_down = reply.split(b"#")[0].strip().lower() in (b"down", b"stopped", b"fail")
            if is_down and open_entry is None:
                # on_marked_down shutdown_sessions ends its sessions
                self.agent_down_entry[key] = self.mark(self.disturbed, key, now, None, "agent down")
            elif not is_down and open_entry is not None:
                open_entry[1] = now + 3     # an agent check every second, applied when read
                self.agent_down_entry[key] = None
            self.agent_reply[key] = reply
            self.stats["agent_flaps"] += 1

    async def admin_chaos(self) -> None:
        invalid = ["set server ua/nope weight 5", "set server ua/a1 weight -1", "set server ua/a1 weight 5x",
                   "set server ua/a1 state bogus", "frobnicate", "show sessions nope/x", "del server ua/a1",
                   "set server ub weight 3", "shutdown sessions server zz/b1", "add server ub/b1 127.0.0.1:1",
                   "add server ub/y9 not-an-address", "set maxconn server ua/a3 abc", "x" * 20000,
                   "set server uc/c1 state", "\x01\x02\x03", "show stat; frobnicate; show info",
                   "set server ua/a1 addr nope", "set server ua/a1 addr 127.0.0.1 port 70000", "shutdown session 999999999",
                   "show stat -1 4 -1 up", "show stat ua 4", "disable health ua/zz", "set server ua/a1 health sideways",
                   "show stat -1 4 -1 json", "prompt on", "set severity-output", "clear counters al",
                   "clear counters all now", "disable frontend zz", "enable frontend", "disable frontend #0 x"]
        while not self.stopping:
            await self.pause(0.5, 2.5)
            if self.stopping:
                break
            roll = self.rng.random()
            try:
                if roll < 0.15:
                    line = self.rng.choice(invalid)
                    if line == "del server ua/a1" and self.admin_state.get("a1") == "maint":
                        # In maintenance a1 may be deleted for real, behind the model's back.
                        line = "del server ua/nosuch"
                    await self.admin_invalid(line)
                elif roll < 0.47:
                    await self.admin_ineligible()
                elif roll < 0.52:
                    await self.admin_shutdown()
                elif roll < 0.65:
                    await self.admin_add_del()
                elif roll < 0.67:
                    # Only the maxima: the totals are what the checks compare with the log.
                    await self.admin_cmd("clear counters")
                    self.stats["admin_commands"] += 1
                elif roll < 0.75:
                    server = self.rng.choice(["b1", "b2", "a1", "a2"])
                    await self.admin_cmd(f"set server {self.upstream_of[server]}/{server} weight {self.rng.randrange(1, 10)}")
                    self.stats["admin_commands"] += 1
                else:
                    await self.consistency()
            except (OSError, asyncio.TimeoutError) as e:
                if self.ferry_alive():
                    self.violation(f"admin socket failed: {type(e).__name__} {e}")

    async def admin_invalid(self, line: str) -> None:
        self.stats["admin_commands"] += 1
        self.stats["admin_invalid"] += 1
        answer = await self.admin_cmd(line)
        if not answer.strip():
            self.violation(f"no answer to invalid admin command {line[:40]!r}")
        else:
            self.stats["admin_errors_seen"] += 1

    async def admin_ineligible(self) -> None:
        """Takes one server out (drain, maint or weight 0) or puts one back."""
        imposed = dict(self.admin_state)
        if imposed and (self.rng.random() < 0.5 or len(imposed) >= 3):
            server, kind = self.rng.choice(sorted(imposed.items()))
            u = self.upstream_of[server]
            if kind == "maint" and self.rng.random() < 0.3:
                # A config server deleted at run time is back (ready, fresh) after the next reload.
                entry = self.mark(self.disturbed, server, self.now(), None, "del server")
                await self.admin_cmd(f"shutdown sessions server {u}/{server}")
                await asyncio.sleep(0.3)
                t_del = self.now()
                answer = await self.admin_cmd(f"del server {u}/{server}")
                self.stats["admin_commands"] += 3
                entry[1] = self.now() + 1
                if "Server deleted" in answer:
                    self.stats["deleted_config_servers"] += 1
                    del self.admin_state[server]
                    still_out = [e for e in self.ineligible.get(server, []) if e[1] is None]
                    if self.valid_reload_sent_at >= t_del:
                        # A reload sent while the answer was awaited has most likely brought it
                        # back already (if ferry ran the reload first, the model is lenient).
                        for e in still_out:
                            e[1] = self.valid_reload_sent_at
                    else:
                        self.deleted[server] = still_out
                return
            cmd = f"set server {u}/{server} weight 100%" if kind == "weight 0" else f"set server {u}/{server} state ready"
            t = self.now()
            for entry in self.ineligible.get(server, []):
                if entry[1] is None:
                    entry[1] = t
            del self.admin_state[server]
            answer = await self.admin_cmd(cmd)
            self.stats["admin_commands"] += 1
            if answer.strip():
                self.violation(f"{cmd!r} answered {answer.strip()[:80]!r}")
            return
        busy_upstreams = {self.upstream_of[s] for s in imposed}
        busy_upstreams |= {self.upstream_of[s] for s in self.deleted}
        candidates = [s for s in self.drain_targets if s not in imposed and s not in self.deleted
                      and self.upstream_of[s] not in busy_upstreams]
        if not candidates:
            return
        server = self.rng.choice(candidates)
        u = self.upstream_of[server]
        kinds = ["drain", "maint"] + (["weight 0"] if server in self.weight0_targets else [])
        kind = self.rng.choice(kinds)
        cmd = f"set server {u}/{server} weight 0" if kind == "weight 0" else f"set server {u}/{server} state {kind}"
        self.admin_state[server] = kind
        answer = await self.admin_cmd(cmd)
        self.stats["admin_commands"] += 1
        if answer.strip():
            self.violation(f"{cmd!r} answered {answer.strip()[:80]!r}")
            return
        self.mark(self.ineligible, server, self.now(), None, kind)

    async def admin_shutdown(self) -> None:
        server = self.rng.choice([s for s in ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3"] if s not in self.deleted])
        rate = self.rng.choice(["", " rate 50/s"])
        entry = self.mark(self.disturbed, server, self.now(), None, "shutdown sessions")
        answer = await self.admin_cmd(f"shutdown sessions server {self.upstream_of[server]}/{server}{rate}")
        self.stats["admin_commands"] += 1
        if answer.strip():
            self.violation(f"shutdown sessions answered {answer.strip()[:80]!r}")
        entry[1] = self.now() + (40 if rate else 1)

    async def admin_add_del(self) -> None:
        u, name = "ub", "x1"
        self.stats["admin_commands"] += 1
        if name not in self.added:
            answer = await self.admin_cmd(f"add server {u}/{name} {HOST}:{self.backends[name]['port']} weight 2")
            if "New server registered" not in answer and answer.strip():
                # A reload since the last add removed it, or the config now has it: both fine.
                self.note(f"add server: {answer.strip()[:80]}")
            self.added.add(name)
            await self.admin_cmd(f"set server {u}/{name} state ready")
        else:
            await self.admin_cmd(f"set server {u}/{name} state maint")
            # del needs no sessions: ask to close them, then try (may legitimately say it has sessions)
            entry = self.mark(self.disturbed, name, self.now(), None, "del server")
            await self.admin_cmd(f"shutdown sessions server {u}/{name}")
            await asyncio.sleep(0.5)
            answer = await self.admin_cmd(f"del server {u}/{name}")
            entry[1] = self.now() + 2
            self.note(f"del server: {answer.strip()[:80]}")
            self.added.discard(name)

    async def reload_chaos(self) -> None:
        while not self.stopping:
            await self.pause(10, 25)
            if self.stopping:
                break
            self.last_reload_valid = False
            if self.rng.random() < 0.25:
                self.write_config(self.invalid_config_text())
                self.stats["reloads_invalid"] += 1
            else:
                self.last_reload_valid = True
                self.config_index ^= 1
                self.write_config(self.config_text(self.config_index))
                self.stats["reloads_valid"] += 1
                # `add server` servers are gone after a reload.
                self.added.clear()
            t_send = self.now()
            if self.last_reload_valid:
                self.valid_reload_sent_at = t_send
                # Deleted config servers come back ready with this reload; close their windows
                # before sending it, or a session checked while the answer is awaited is misjudged.
                for server, entries in self.deleted.items():
                    for e in entries:
                        e[1] = t_send
                self.deleted = {}
            if self.rng.random() < 0.25:
                self.stats["admin_reloads"] += 1
                answer = await self.admin_cmd("reload")
                if not (answer.startswith("Configuration reloaded") or answer.startswith("Reload failed")):
                    self.violation(f"admin reload answered {answer[:100]!r}")
                if answer.startswith("Configuration reloaded"):
                    self.admin_reloads_ok = getattr(self, "admin_reloads_ok", 0) + 1
                else:
                    self.admin_reloads_failed = getattr(self, "admin_reloads_failed", 0) + 1
            else:
                self.ferry.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.5)
            # Put back a valid file so an invalid one never lingers.
            self.write_config(self.config_text(self.config_index))

    async def flood_chaos(self) -> None:
        while not self.stopping:
            await self.pause(30, 60)
            if self.stopping:
                break
            try:
                m = await self.metrics()
            except (OSError, asyncio.TimeoutError, RuntimeError) as e:
                if not self.metrics_flooding:
                    self.violation(f"metrics before flood: {e}")
                continue
            cap = int(m.get("ferry_sessions_capacity", 0))
            cur = int(m.get("ferry_sessions", 0))
            extra = max(0, cap - cur) + 150
            self.stats["floods"] += 1
            self.note(f"flood: capacity {cap}, sessions {cur}, opening {extra}")
            socks = []
            for i in range(min(extra, 3000)):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.bind((f"127.0.9.{i % 250 + 2}", 0))
                    s.connect_ex((HOST, self.listen[self.rng.choice(["ua", "ub", "uc"])]))
                except OSError:
                    s.close()
                    break
                socks.append(s)
                if i % 100 == 99:
                    await asyncio.sleep(0.05)
            self.stats["flood_clients"] += len(socks)
            await self.pause(4, 10)
            for s in socks:
                if self.rng.random() < 0.2:
                    self.reset(s)
                s.close()

    async def hostile_chaos(self) -> None:
        """Fills the admin socket's 64 and the metrics endpoint's 16 client slots with idle
        connections, and rotates the access log (rename + SIGUSR1) under load."""
        while not self.stopping:
            await self.pause(15, 40)
            if self.stopping:
                break
            roll = self.rng.random()
            if roll < 0.35:
                self.stats["admin_floods"] += 1
                self.admin_flooding = True
                idle = []
                for _ in range(70):
                    try:
                        idle.append(await asyncio.wait_for(asyncio.open_unix_connection(self.admin), 3))
                    except (OSError, asyncio.TimeoutError):
                        break
                await asyncio.sleep(0.5)
                try:
                    answer = await self.admin_once("show info", timeout=5)
                    if "Too many admin connections" not in answer and "Uptime" not in answer and "Name" not in answer:
                        self.violation(f"admin answered {answer[:80]!r} with every slot taken")
                except (OSError, asyncio.TimeoutError):
                    pass    # a full backlog may also refuse
                for _, w in idle:
                    w.close()
                await asyncio.sleep(1.0)
                self.admin_flooding = False
                try:
                    answer = await self.admin_once("show info", timeout=5)
                    if "Too many admin connections" in answer:
                        self.violation("admin still busy 1 s after its idle clients left")
                except (OSError, asyncio.TimeoutError) as e:
                    self.violation(f"admin socket dead after its slots were filled: {e}")
            elif roll < 0.7:
                self.stats["metrics_floods"] += 1
                self.metrics_flooding = True
                idle = []
                for _ in range(20):
                    try:
                        idle.append(await asyncio.wait_for(asyncio.open_connection(HOST, self.metrics_port), 3))
                    except (OSError, asyncio.TimeoutError):
                        break
                await asyncio.sleep(0.5)
                for _, w in idle:
                    w.close()
                await asyncio.sleep(1.0)
                self.metrics_flooding = False
                try:
                    await self.metrics()
                except (OSError, asyncio.TimeoutError, RuntimeError) as e:
                    self.violation(f"metrics not served 1 s after its idle clients left: {e}")
            else:
                self.stats["log_rotations"] += 1
                self.rotated += 1
                os.rename(self.access, f"{self.access}.{self.rotated}")
                self.ferry.send_signal(signal.SIGUSR1)

    async def pause(self, lo: float, hi: float) -> None:
        end = self.now() + self.rng.uniform(lo, hi) / self.args.chaos
        while not self.stopping and self.now() < end:
            await asyncio.sleep(min(0.5, end - self.now()))

    # ---- checks
    async def consistency(self) -> None:
        answer = await self.admin_cmd("show stat;show sessions")
        self.stats["consistency_checks"] += 1
        rows, sessions = self.parse_stat(answer), self.parse_sessions(answer)
        if rows is None or sessions is None:
            self.violation(f"show stat;show sessions unparsable: {answer[:120]!r}")
            return
        per = {}
        for s in sessions:
            if "backend" in s and "server" in s:
                per[(s["backend"], s["server"])] = per.get((s["backend"], s["server"]), 0) + 1
        listed = {}
        for row in rows:
            if row.get("svname") in ("FRONTEND", "BACKEND"):
                continue
            key = (row["pxname"], row["svname"])
            listed[key] = int(row["scur"] or 0)
        for key in set(per) | set(listed):
            if per.get(key, 0) != listed.get(key, 0):
                # A session whose server left the file is not in show stat any more.
                if key not in listed:
                    continue
                self.violation(f"show stat scur {listed.get(key, 0)} != show sessions {per.get(key, 0)} for {key[0]}/{key[1]}")
        backend_total = {}
        for row in rows:
            if row.get("svname") == "BACKEND":
                backend_total[row["pxname"]] = int(row["scur"] or 0)
        for u, total in backend_total.items():
            # Sessions on a server the file no longer has have no server row, but the BACKEND
            # row counts them with the rest of the upstream's sessions.
            have = sum(v for (uu, ss), v in per.items() if uu == u)
            if have != total:
                self.violation(f"show stat BACKEND scur {total} != show sessions {have} for {u}")

    async def monitor(self) -> None:
        last_ticks, last_t = self.cpu_ticks(), time.monotonic()
        hot = 0
        hz = os.sysconf("SC_CLK_TCK")
        while not self.stopping:
            await asyncio.sleep(5)
            if not self.ferry_alive():
                self.violation(f"ferry exited with status {self.ferry.returncode}")
                self.stopping = True
                return
            ticks, t = self.cpu_ticks(), time.monotonic()
            share = (ticks - last_ticks) / hz / (t - last_t)
            last_ticks, last_t = ticks, t
            self.cpu_samples.append(share)
            hot = hot + 1 if share > 0.95 else 0
            if hot == 3:
                self.violation("ferry near 100% CPU for 15 s")
            self.rss_samples.append(self.rss_kb())
            try:
                await self.metrics()
                self.stats["metrics_scrapes"] += 1
            except (OSError, asyncio.TimeoutError, RuntimeError) as e:
                if not self.metrics_flooding:   # its 17th client gets 503 by design
                    self.violation(f"metrics scrape failed: {e}")
            for name in self.limits:
                st = self.backend_stats(name)
                if st and st["violations"]:
                    key = f"maxconn-{name}-{id(self.backends[name]['proc'])}"
                    if key not in self.__dict__:
                        self.__dict__[key] = True
                        self.violation(f"max_conns of {name} exceeded at the backend: {st['detail'][:3]}")
            if self.args.verbose:
                print(f"[{self.now():7.1f}s] clients {self.live_clients} cpu {share:.0%} rss {self.rss_samples[-1]} kB "
                      f"fds {self.fd_count()} {self.brief()}", flush=True)

    def brief(self) -> str:
        s = self.stats
        return (f"banner {s['sessions_banner']} req {s['requests_ok']} reloads {s['reloads_valid']}+{s['reloads_invalid']} "
                f"admin {s['admin_commands']} kills {s['kills']} bh {s['blackholes']} floods {s['floods']}")

    async def settle(self, what: str, probe, timeout: float = 20.0):
        """Polls probe() until it returns true; the last value is reported if not."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            ok, value = await probe()
            if ok:
                return True, value
            await asyncio.sleep(0.5)
        self.violation(f"{what}: still {value} after {timeout:.0f}s")
        return False, value

    async def final_checks(self, baseline_fds: int, warm_rss: int) -> None:
        # Undo what chaos left: every backend up, agents happy, admin state ready, base config.
        for name, be in self.backends.items():
            if be["state"] == "stopped":
                be["proc"].send_signal(signal.SIGCONT)
            if be["proc"] is None or be["proc"].returncode is not None:
                await self.start_backend(name)
            be["state"] = "up"
        for key in self.agent_reply:
            self.agent_reply[key] = b"up ready 100% maxconn:0\n" if key in ("a1", "a2") else b"up\n"
        self.config_index = 0
        self.deleted = {}
        self.write_config(self.config_text(0))
        self.ferry.send_signal(signal.SIGHUP)
        await asyncio.sleep(2)
        for server in list(self.admin_state):
            u = self.upstream_of[server]
            await self.admin_cmd(f"set server {u}/{server} state ready")
            await self.admin_cmd(f"set server {u}/{server} weight 100%")
        if not self.ferry_alive():
            self.violation("ferry died before the final checks")
            return
        # Every listener serves once the chaos is over (a paused or lost listener would not).
        await asyncio.sleep(3)   # probes see restarted backends up again
        for name in ["ua", "ub", "uc", "ud"]:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(HOST, self.listen[name]), 5)
                banner = await asyncio.wait_for(r.readexactly(16), 5)
                w.close()
                if not banner.startswith(b"ID:"):
                    self.violation(f"listener {name} answered {banner!r} after the chaos")
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                self.violation(f"listener {name} does not serve after the chaos: {type(e).__name__} {e}")

        async def no_sessions():
            answer = await self.admin_cmd("show stat;show sessions")
            rows, sessions = self.parse_stat(answer) or [], self.parse_sessions(answer) or []
            scur = sum(int(r["scur"] or 0) for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND"))
            m = await self.metrics()
            return (scur == 0 and not sessions and m.get("ferry_sessions", -1) == 0,
                    f"scur {scur}, show sessions {len(sessions)}, metrics ferry_sessions {m.get('ferry_sessions')}")
        await self.settle("sessions after every client left", no_sessions, 30)

        async def fds_back():
            n = self.fd_count()
            # Idle pipes the pool keeps for the next bulk transfer are not a leak.
            pooled = int((await self.metrics()).get("ferry_pipes_pooled", 0))
            return n <= baseline_fds + 2 * pooled, f"{n} fds (baseline {baseline_fds}, {pooled} pooled pipes)"
        ok, self.final_fds = await self.settle("fd count back to baseline", fds_back, 20)

        hz = os.sysconf("SC_CLK_TCK")
        t1, c1 = time.monotonic(), self.cpu_ticks()
        await asyncio.sleep(4)
        self.idle_cpu = (self.cpu_ticks() - c1) / hz / (time.monotonic() - t1)
        if self.idle_cpu > 0.05:
            self.violation(f"idle CPU {self.idle_cpu:.1%} with no clients")

        self.final_rss = self.rss_kb()
        if warm_rss and self.final_rss > 2 * warm_rss + 40_000:
            self.violation(f"RSS grew from {warm_rss} kB after warm-up to {self.final_rss} kB")

        await asyncio.sleep(1)   # the access log flushes within 100 ms
        m = await self.metrics()
        accepted = int(m.get("ferry_listener_accepted_total", 0))
        lines, bad, serials, per_listener = 0, 0, set(), {}
        required = ["time", "listener", "client", "client_port", "upstream", "server", "server_address",
                    "tried", "connect_ms", "duration_ms", "bytes_from_client", "bytes_to_client", "end",
                    "status", "connection"]
        files = [f"{self.access}.{i}" for i in range(1, self.rotated + 1)] + [self.access]
        for raw in (line for path in files for line in open(path, "rb")):
            lines += 1
            try:
                rec = json.loads(raw)
                missing = [k for k in required if k not in rec]
                if missing:
                    raise ValueError(f"missing {missing}")
                if rec["connection"] in serials:
                    raise ValueError(f"connection {rec['connection']} twice")
                serials.add(rec["connection"])
                per_listener[rec["listener"]] = per_listener.get(rec["listener"], 0) + 1
            except ValueError as e:
                bad += 1
                if bad <= 3:
                    self.violation(f"access log line {lines}: {e}: {raw[:120]!r}")
        self.access_lines = lines
        self.accepted_total = accepted
        # Per listener still open; a listener a reload closed takes its counter with it.
        for name, value in m.items():
            if name.startswith("ferry_listener_accepted_total{"):
                listener = name.split('listener="', 1)[1].split('"', 1)[0]
                if per_listener.get(listener, 0) != int(value):
                    self.violation(f"access log has {per_listener.get(listener, 0)} lines for listener {listener}, "
                                   f"which accepted {int(value)}")
        if lines < accepted:
            self.violation(f"access log has {lines} lines for {accepted} accepted connections")

        with open(self.events) as f:
            ev = [json.loads(l) for l in f if l.startswith("{")]
        names = {}
        for e in ev:
            names[e.get("event")] = names.get(e.get("event"), 0) + 1
        self.event_counts = names
        if names.get("reload_failed", 0) != self.stats["reloads_invalid"]:
            # every invalid file gets one reload_failed, by signal or by admin `reload`
            self.violation(f"{self.stats['reloads_invalid']} invalid reloads but {names.get('reload_failed', 0)} reload_failed events")

    # ---- main
    async def run(self) -> int:
        self.plan()
        for name in self.backends:
            await self.start_backend(name)
        await self.start_agents()
        self.start_ferry()
        for _ in range(100):
            if os.path.exists(self.admin):
                try:
                    await self.admin_cmd("show info")
                    break
                except OSError:
                    pass
            await asyncio.sleep(0.1)
        if not self.ferry_alive():
            print(open(os.path.join(self.dir, "stderr.log")).read())
            raise SystemExit("ferry did not start")
        await asyncio.sleep(2.5)
        baseline_fds = min([self.fd_count() for _ in range(5)])
        print(f"soak: ferry pid {self.pid}, dir {self.dir}, {self.args.seconds}s, {self.args.clients} clients, "
              f"baseline {baseline_fds} fds", flush=True)

        workers = [asyncio.ensure_future(c) for c in [
            self.population(), self.churn(), self.monitor(), self.backend_chaos(), self.agent_chaos(),
            self.admin_chaos(), self.reload_chaos(), self.flood_chaos(), self.hostile_chaos()]]
        warm_rss = 0
        end = self.args.seconds
        while self.now() < end and not self.stopping:
            await asyncio.sleep(1)
            if not warm_rss and self.now() > min(60, end / 3):
                warm_rss = self.rss_kb()
            bad = [w for w in workers if w.done() and w.exception()]
            for w in bad:
                self.violation(f"soak task failed: {w.exception()!r}")
                workers.remove(w)
        self.stopping = True
        print(f"soak: chaos over at {self.now():.0f}s, {self.brief()}; letting clients leave", flush=True)
        done, pending = await asyncio.wait(workers, timeout=60)
        for w in done:
            if w.exception():
                self.violation(f"soak task failed: {w.exception()!r}")
        if pending:
            self.violation(f"{len(pending)} soak tasks did not finish")
        if self.ferry_alive():
            await self.final_checks(baseline_fds, warm_rss)
        else:
            self.violation(f"ferry exited with status {self.ferry.returncode}")
        self.report(baseline_fds, warm_rss)
        return 1 if self.violations else 0

    def report(self, baseline_fds, warm_rss) -> None:
        cpu = sorted(self.cpu_samples)
        print("\n== soak report ==")
        for k, v in self.stats.items():
            print(f"  {k:22} {v}")
        if cpu:
            print(f"  cpu share median {cpu[len(cpu) // 2]:.1%}, max {cpu[-1]:.1%}, idle at end {getattr(self, 'idle_cpu', -1):.1%}")
        if self.rss_samples:
            print(f"  rss kB: after warm-up {warm_rss}, max {max(self.rss_samples)}, end {getattr(self, 'final_rss', '-')}")
        print(f"  fds: baseline {baseline_fds}, end {getattr(self, 'final_fds', '-')}")
        print(f"  access log lines {getattr(self, 'access_lines', '-')}, accepted {getattr(self, 'accepted_total', '-')}")
        print(f"  events: {getattr(self, 'event_counts', {})}")
        print(f"  violations: {len(self.violations)}")
        for v in self.violations[:40]:
            print("   ", v)
        print(f"  work dir: {self.dir}")

    def cleanup(self) -> None:
        if self.ferry and self.ferry_alive():
            self.ferry.send_signal(signal.SIGQUIT)
            try:
                self.ferry.wait(10)
            except subprocess.TimeoutExpired:
                self.ferry.kill()
        for be in self.backends.values():
            p = be.get("proc")
            if p and p.returncode is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--backend":
        port, name, stats, limit = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
        asyncio.run(backend_main(port, name, stats, limit))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    ap.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", 1200)))
    ap.add_argument("--nofile", type=int, default=3400, help="worker_rlimit_nofile for ferry")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", time.time())))
    ap.add_argument("--ferry-bin", default=".build/release/ferry")
    ap.add_argument("--chaos", type=float, default=float(os.environ.get("SOAK_CHAOS", 1)),
                    help="how much faster trouble comes (2 = twice as often)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    raise_nofile()
    print(f"soak: seed {args.seed}", flush=True)
    soak = Soak(args)
    loop = asyncio.new_event_loop()
    try:
        rc = loop.run_until_complete(soak.run())
    finally:
        soak.cleanup()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
        if not args.keep and not soak.violations:
            shutil.rmtree(soak.dir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
