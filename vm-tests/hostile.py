#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Malformed and spoofed frames at the switch, for vm-tests/test_hostile_flood.sh.

  hostile.py --list                      the classes, one per line: NAME EXPECTED_REASON
  hostile.py CLASS --iface IF --dst-mac MAC --vip A --tcp-port P --udp-port P
             --backend A --client A [--rounds N] [--tuples PORT,...] [--seed S]

Sends every frame of CLASS, --rounds times, through an AF_PACKET socket on IF (to the
switch's interface, its MAC), and prints one line: "sent N". EXPECTED_REASON is the verdict
counter (bgctl status -j .verdicts) that must grow by exactly N; "any" means some verdict
other than a forward; "fwd" means the frames are forwarded (they are valid packets) and the
proof is that the real traffic is unaffected. Bounded: at most 200,000 frames per call.
"""
import argparse
import errno
import random
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
TCP, UDP = 6, 17
SYN, RST, ACK = 0x02, 0x04, 0x10

# class -> expected verdict counter
CLASSES = {
    "random": "any",             # random bytes after the MACs (any ethertype)
    "random_ip": "any",          # IPv4 ethertype, random bytes after it
    "trunc_ip": "drop_malformed",  # a SYN to the VIP cut at every offset, IP length kept
    "trunc_ip6": "drop_malformed",  # an IPv6 header cut at every offset
    "trunc_l4": "drop_l4_trunc",  # IP length right, TCP/UDP header cut at every offset
    "bad_doff": "drop_l4_trunc",  # TCP data offset below 5 or past the packet
    "bad_ihl": "drop_malformed",  # IHL 0..4
    "bad_version": "drop_malformed",  # IP version other than 4 under the IPv4 ethertype
    "bad_tot_len": "drop_malformed",  # IP total length below its header or past the frame
    "frag_vip": "drop_fragment",  # first and later fragments to the VIP
    "frag_other": "pass_fragment",  # later fragments to an address that is no VIP
    "ip_options": "drop_ip_options",  # IPv4 options, to the VIP:port
    "ttl_expired": "pass_ttl",   # TTL 1 to the VIP: the kernel answers
    "spoof_reply": "drop_reply_iface",  # a backend's address:port on the client side
    "spoof_reply_rst": "drop_reply_iface",  # the same, RSTs on live tuples' reply direction
    "spoof_rst": "fwd",          # client-direction RSTs on live tuples (random sequence)
}


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl=64, frag=0, opts=b"", tot=None, ihl=None, ver=4):
    hl = 20 + len(opts)
    ihl = hl // 4 if ihl is None else ihl
    tot = hl + len(payload) if tot is None else tot
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tot & 0xFFFF, random.getrandbits(16),
                    frag, ttl, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def tcp(sport, dport, flags, seq=None, doff=5):
    seq = random.getrandbits(32) if seq is None else seq
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, doff << 4, flags, 65535, 0, 0)


def udp(sport, dport, data=b"x" * 16):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def frames(cls, a, tuples):
    eth4 = a.dst + a.src + struct.pack("!H", ETH_P_IP)
    eth6 = a.dst + a.src + struct.pack("!H", ETH_P_IPV6)
    sp = lambda: random.randint(1024, 65535)
    syn = ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN))
    if cls == "random":
        return [a.dst + a.src + random.randbytes(random.randint(2, 300)) for _ in range(64)]
    if cls == "random_ip":
        return [eth4 + random.randbytes(random.randint(0, 300)) for _ in range(64)]
    if cls == "trunc_ip":
        return [(eth4 + syn)[:n] for n in range(14, 14 + len(syn))]
    if cls == "trunc_ip6":
        h6 = struct.pack("!IHBB16s16s", 6 << 28, 20, TCP, 64,
                         socket.inet_pton(socket.AF_INET6, "fd00:0:1::2"),
                         socket.inet_pton(socket.AF_INET6, "fd00:100::1")) + tcp(sp(), 80, SYN)
        return [(eth6 + h6)[:n] for n in range(14, 14 + len(h6))]
    if cls == "trunc_l4":
        out = []
        for n in range(0, 20):
            out.append(eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN)[:n]))
        for n in range(0, 8):
            out.append(eth4 + ipv4(a.client, a.vip, UDP, udp(sp(), a.udp_port)[:n]))
        return out
    if cls == "bad_doff":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN, doff=d))
                for d in (0, 1, 2, 3, 4, 6, 15)]
    if cls == "bad_ihl":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN), ihl=i)
                for i in range(0, 5)]
    if cls == "bad_version":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN), ver=v)
                for v in range(16) if v != 4]
    if cls == "bad_tot_len":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN), tot=t)
                for t in (0, 1, 19, 41, 60, 1500, 65535)]
    if cls == "frag_vip":
        seg = tcp(sp(), a.tcp_port, SYN) + b"y" * 32
        return [eth4 + ipv4(a.client, a.vip, TCP, seg, frag=0x2000),       # first, MF
                eth4 + ipv4(a.client, a.vip, TCP, b"z" * 24, frag=0x2000 | 7),
                eth4 + ipv4(a.client, a.vip, TCP, b"z" * 24, frag=13),       # last
                eth4 + ipv4(a.client, a.vip, UDP, udp(sp(), a.udp_port), frag=0x2000)]
    if cls == "frag_other":
        return [eth4 + ipv4(a.client, "10.200.0.1", TCP, b"z" * 24, frag=0x2000 | o)
                for o in (1, 100, 0x1FFF)]
    if cls == "ip_options":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN), opts=b"\x01" * n)
                for n in (4, 8, 40)]
    if cls == "ttl_expired":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(sp(), a.tcp_port, SYN), ttl=t)
                for t in (0, 1)]
    if cls == "spoof_reply":
        return [eth4 + ipv4(a.backend, a.client, TCP, tcp(a.tcp_port, sp(), f))
                for f in (SYN | ACK, ACK, RST, 0x01 | ACK)] + \
               [eth4 + ipv4(a.backend, a.client, UDP, udp(a.udp_port, sp()))]
    if cls == "spoof_reply_rst":
        return [eth4 + ipv4(a.backend, a.client, TCP, tcp(a.tcp_port, p, RST)) for p in tuples]
    if cls == "spoof_rst":
        return [eth4 + ipv4(a.client, a.vip, TCP, tcp(p, a.tcp_port, f))
                for p in tuples for f in (RST, RST | ACK)]
    raise ValueError(cls)


def main():
    ap = argparse.ArgumentParser(description="malformed and spoofed frames at the switch")
    ap.add_argument("cls", nargs="?")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--iface")
    ap.add_argument("--dst-mac")
    ap.add_argument("--vip")
    ap.add_argument("--tcp-port", type=int)
    ap.add_argument("--udp-port", type=int)
    ap.add_argument("--backend")
    ap.add_argument("--client")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tuples", default="")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.list:
        for k, v in CLASSES.items():
            print(k, v)
        return 0
    if a.cls not in CLASSES or not all([a.iface, a.dst_mac, a.vip, a.tcp_port, a.udp_port,
                                        a.backend, a.client]):
        ap.error("a CLASS (see --list) and every address option")
    random.seed(a.seed)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    a.src = s.getsockname()[4][:6]
    a.dst = bytes.fromhex(a.dst_mac.replace(":", ""))
    tuples = [int(p) for p in a.tuples.split(",") if p]
    sent = 0
    for _ in range(min(a.rounds, 10000)):
        for f in frames(a.cls, a, tuples):
            if sent >= 200000:
                break
            for _ in range(1000):  # the device queue may be full: wait for room
                try:
                    s.send(f)
                    break
                except OSError as e:
                    if e.errno != errno.ENOBUFS:
                        raise
                    time.sleep(0.001)
            else:
                raise OSError(errno.ENOBUFS, "device queue full for 1 s")
            sent += 1
    print("sent", sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
