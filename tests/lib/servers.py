#!/usr/bin/env python3
"""World-side test servers: TCP echo and UDP echo on the given ports, on every IPv4 and IPv6
address (one socket per family and port). Stops by itself after --lifetime seconds.

usage: servers.py --tcp 80,443 --udp 9999 [--udp-bind ADDR,...] [--banner 2222] [--lifetime 600]
                  [--ready FILE]

--banner ports speak first (server-first, like SSH): "banner\n" on accept, then echo.

UDP replies must leave from the address the datagram was sent to (or conntrack will not match
them), so --udp-bind lists the addresses to bind UDP sockets to, one each."""
import argparse
import resource
import selectors
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("--tcp", default="")
ap.add_argument("--udp", default="")
ap.add_argument("--udp-bind", default="")
ap.add_argument("--banner", default="")
ap.add_argument("--lifetime", type=float, default=600)
ap.add_argument("--ready", help="file written once every socket listens")
args = ap.parse_args()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
banner_ports = {int(p) for p in args.banner.split(",") if p}

sel = selectors.DefaultSelector()
for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for p in filter(None, (args.tcp + "," + args.banner).split(",")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((any_addr, int(p)))
        s.listen(256)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "accept")
    binds = [a for a in args.udp_bind.split(",") if a and (":" in a) == (fam == socket.AF_INET6)]
    for p in filter(None, args.udp.split(",")):
        for addr in binds or [any_addr]:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, int(p)))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, "udp")

if args.ready:
    open(args.ready, "w").close()
end = time.monotonic() + args.lifetime
while time.monotonic() < end:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        if key.data == "accept":
            try:
                c, _ = s.accept()
            except OSError:
                continue
            c.setblocking(False)
            if s.getsockname()[1] in banner_ports:
                try:
                    c.send(b"banner\n")
                except OSError:
                    pass
            sel.register(c, selectors.EVENT_READ, "conn")
        elif key.data == "conn":
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    s.sendall(data)
                except OSError:
                    pass
            else:
                sel.unregister(s)
                s.close()
        else:
            try:
                data, peer = s.recvfrom(65536)
                s.sendto(data, peer)
            except OSError:
                pass
