#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Traffic for bgswitch's end-to-end tests and demo. Every mode is bounded in count and time.

  client.py http HOST PORT N      N new TCP connections, one HTTP/1.0 GET each
  client.py reset HOST PORT N     as http, then one byte more after the server closed: its
                                  kernel answers with exactly one RST (ok = RST seen)
  client.py udp HOST PORT N       N new UDP flows (a fresh source port each, or BASE+i with
                                  --sport-base), one datagram each
  client.py hold HOST PORT ...    one long-lived flow (HTTP keep-alive or one UDP socket)
                                  asking every --interval, one line per answer to --out

http/udp print one JSON object: {"total", "ok", "errors", "backends": {"blue b1": n},
"colors": {"blue": n}}.
"""
import argparse
import json
import os
import socket
import sys
import time


def tally(results):
    out = {"total": len(results), "ok": 0, "errors": 0, "backends": {}, "colors": {}}
    for r in results:
        if r is None:
            out["errors"] += 1
            continue
        out["ok"] += 1
        out["backends"][r] = out["backends"].get(r, 0) + 1
        color = r.split()[0]
        out["colors"][color] = out["colors"].get(color, 0) + 1
    return out


def get_to_close(s):
    """One HTTP/1.0 GET on connected socket s, read until the server closes: the body."""
    s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def one_http(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            body = get_to_close(s)
        return body or None
    except (OSError, IndexError, UnicodeDecodeError):
        return None


TCP_CLOSE = 7  # tcpi_state


def one_reset(host, port, timeout):
    """A GET, then one more byte after the server closed: the server's kernel answers it with
    exactly one RST. The body if that RST came (the socket left CLOSE_WAIT for CLOSE)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            body = get_to_close(s)
            time.sleep(0.02)
            s.sendall(b"x")
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE:
                    return body or None
                time.sleep(0.01)
        return None
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def one_udp(host, port, timeout, sport=0, payload=b"ping"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
            s.connect((host, port))
            s.send(payload)
            data = s.recv(2048).decode()
        return " ".join(data.split()[:2])
    except (OSError, UnicodeDecodeError):
        return None


def bulk(args, fn):
    deadline = time.monotonic() + args.deadline
    results = []
    for i in range(args.count):
        if time.monotonic() > deadline:
            break
        if args.sport_base:
            results.append(fn(args.host, args.port, args.timeout, args.sport_base + i))
        else:
            results.append(fn(args.host, args.port, args.timeout))
    out = tally(results)
    out["elapsed_s"] = round(args.deadline - (deadline - time.monotonic()), 3)
    print(json.dumps(out))
    return 0


def hold(args):
    """One flow for --duration seconds, asking every --interval; stops early if --stop exists."""
    end = time.monotonic() + args.duration
    out = open(args.out, "a", buffering=1) if args.out else sys.stdout
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    if args.proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        s.connect((args.host, args.port))
    else:
        s = socket.create_connection((args.host, args.port), timeout=args.timeout)
    local = "%s:%d" % s.getsockname()[:2]
    out.write("local %s\n" % local)
    n = 0
    buf = b""
    while time.monotonic() < end and not (args.stop and os.path.exists(args.stop)):
        n += 1
        try:
            if args.proto == "udp":
                s.send(b"hold %d" % n)
                who = " ".join(s.recv(2048).decode().split()[:2])
            else:
                s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("connection closed")
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(buf) < length:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("connection closed")
                    buf += chunk
                who, buf = buf[:length].decode().strip(), buf[length:]
            out.write("%.3f %s\n" % (time.time(), who))
        except (OSError, ValueError) as e:
            out.write("%.3f error %s\n" % (time.time(), e))
            if args.proto == "tcp":
                return 1
        time.sleep(args.interval)
    s.close()
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["http", "reset", "udp", "hold"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int, nargs="?", default=1)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--deadline", type=float, default=60.0, help="bulk: stop after this long")
    ap.add_argument("--proto", choices=["tcp", "udp"], default="tcp")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--sport-base", type=int, default=0,
                    help="udp: flow i uses source port BASE+i (UDP flows are told apart only "
                    "by their tuple: a reused port would continue an old flow)")
    ap.add_argument("--out")
    ap.add_argument("--stop")
    args = ap.parse_args()
    if args.mode == "http":
        return bulk(args, one_http)
    if args.mode == "reset":
        return bulk(args, one_reset)
    if args.mode == "udp":
        return bulk(args, one_udp)
    return hold(args)


if __name__ == "__main__":
    sys.exit(main())
