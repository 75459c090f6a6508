#!/usr/bin/env python3
"""A small authoritative DNS server for tests (UDP and TCP), with names the tests control, that
logs every question it receives, one per line, to --log: "NAME QTYPE udp|tcp SOURCE-PORT".

usage: dnsserver.py --addr ADDR --zone FILE --log FILE [--lifetime 600]

Zone lines: NAME TTL TYPE VALUE (TYPE is A, AAAA or CNAME). CNAMEs are followed inside the zone.
Names not in the zone get NXDOMAIN. UDP answers over 512 bytes (or the EDNS size) are truncated
to the header and question with TC set. A UDP question for a name that starts with "spoofed."
first gets a forged answer (A 203.0.113.66, the right ID and question) from another port of the
same address, as an off-path attacker would send it, then the real one 0.3 s later. A name that
starts with "silent." gets no answer, and one of the form "many-N.<zone name>" 20 addresses of
its own, 198.18.N/256.(N%256) ... (consecutive from 198.18.0.0, 20 for each N)."""
import argparse
import os
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--addr", required=True)
ap.add_argument("--zone", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--lifetime", type=float, default=600)
ap.add_argument("--ready", help="file written once both sockets listen")
a = ap.parse_args()

zone = {}
for line in open(a.zone):
    f = line.split()
    if len(f) == 4:
        zone.setdefault(f[0].lower().rstrip("."), []).append((int(f[1]), f[2], f[3]))
log = open(a.log, "a", buffering=1)


def answer(q, udp, peer):
    qid, rc, qname, qtype, _ = dnsmsg.parse(q)
    log.write("%s %d %s %d\n" % (qname, qtype, "udp" if udp else "tcp", peer[1]))
    if qname.startswith("many-") and qtype == 1:
        n = int(qname[5:].split(".", 1)[0])
        recs = []
        for k in range(20):
            i = n * 20 + k
            recs.append((qname, "A", 300, "198.18.%d.%d" % (i // 256, i % 256)))
        return dnsmsg.response(q, recs)
    recs, name, seen = [], qname, set()
    while name in zone and name not in seen:
        seen.add(name)
        nxt = None
        for ttl, typ, val in zone[name]:
            if typ == "CNAME":
                recs.append((name, "CNAME", ttl, val))
                nxt = val.lower()
            elif (typ == "A" and qtype == 1) or (typ == "AAAA" and qtype == 28):
                recs.append((name, typ, ttl, val))
        if not nxt:
            break
        name = nxt
    m = dnsmsg.response(q, recs, rcode=0 if qname in zone else 3)
    limit = 512
    if udp and len(m) > limit:
        qend = 12
        while q[qend] != 0:
            qend += 1 + q[qend]
        qend += 5
        hdr = bytearray(m[:12])
        hdr[2] |= 0x02
        hdr[6:12] = b"\0" * 6
        m = bytes(hdr) + q[12:qend]
    return m


fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
sel = selectors.DefaultSelector()
u = socket.socket(fam, socket.SOCK_DGRAM)
u.bind((a.addr, 53))
sel.register(u, selectors.EVENT_READ, "udp")
t = socket.socket(fam, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((a.addr, 53))
t.listen(64)
sel.register(t, selectors.EVENT_READ, "accept")
if a.ready:
    open(a.ready, "w").close()
end = time.monotonic() + a.lifetime
while time.monotonic() < end:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            if key.data == "udp":
                q, peer = s.recvfrom(4096)
                m = answer(q, True, peer)
                qname = dnsmsg.parse(q)[2]
                if qname.startswith("silent."):
                    continue
                if qname.startswith("spoofed."):
                    x = socket.socket(fam, socket.SOCK_DGRAM)
                    x.bind((a.addr, 0))
                    x.sendto(dnsmsg.response(q, [(qname, "A", 300, "203.0.113.66")]), peer)
                    x.close()
                    time.sleep(0.3)
                s.sendto(m, peer)
            elif key.data == "accept":
                c, cpeer = s.accept()
                c.settimeout(2)
                n = struct.unpack("!H", c.recv(2, socket.MSG_WAITALL))[0]
                q = c.recv(n, socket.MSG_WAITALL)
                m = answer(q, False, cpeer)
                c.sendall(struct.pack("!H", len(m)) + m)
                c.close()
        except (OSError, IndexError, struct.error):
            pass
