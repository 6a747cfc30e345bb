#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A backend for bgswitch's end-to-end tests and demo: names its color and id (IPv4 and IPv6).

HTTP (HTTP/1.1, keep-alive) on every --http port answers "COLOR ID" in the body and the
X-Backend header; UDP on every --udp port echoes "COLOR ID PAYLOAD". Touches --ready
once every socket is bound. With --reset (a bad release), every HTTP request but /healthz
is answered with a TCP reset: health checks pass, real requests fail.
"""
import argparse
import http.server
import os
import socket
import socketserver
import struct
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("color")
    ap.add_argument("ident")
    ap.add_argument("--http", type=int, action="append", default=[])
    ap.add_argument("--udp", type=int, action="append", default=[])
    ap.add_argument("--ready")
    ap.add_argument("--reset", action="store_true")
    args = ap.parse_args()
    name = f"{args.color} {args.ident}"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if args.reset and self.path != "/healthz":
                # linger 0: close() sends a RST, not a FIN
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                self.request.close()
                self.close_connection = True
                return
            body = (name + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        """Dual stack: IPv6 and IPv4 (as mapped addresses) on one socket."""
        address_family = socket.AF_INET6
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 512

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    servers = []
    for port in args.http:
        srv = Server(("::", port), Handler)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    # Reply from the address the datagram was sent to (a dsr VIP on lo, not eth0's).
    IP_PKTINFO = 8

    def udp_loop(sock):
        while True:
            data, anc, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(20))
            reply = name.encode() + b" " + data
            cmsg = []
            for level, kind, blob in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(blob) >= 12:
                    cmsg = [(socket.IPPROTO_IP, IP_PKTINFO,
                             struct.pack("=i4s4s", 0, blob[8:12], b"\0" * 4))]
                elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                    cmsg = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO,
                             blob[:16] + struct.pack("=i", 0))]
            sock.sendmsg([reply], cmsg, 0, peer)

    for port in args.udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", port))
        threading.Thread(target=udp_loop, args=(s,), daemon=True).start()
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s6.bind(("::", port))
        threading.Thread(target=udp_loop, args=(s6,), daemon=True).start()

    if args.ready:
        with open(args.ready, "w") as f:
            f.write(str(os.getpid()))
    threading.Event().wait()


if __name__ == "__main__":
    main()
