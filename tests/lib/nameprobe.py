#!/usr/bin/env python3
"""Sandbox-side probes for names (DNS, TLS SNI, HTTP Host). Prints one line: a word, then details.

  nameprobe.py resolve NAME [--server ADDR] [--tcp [--half-close] [--queries N] [--junk]]
        [--type A|AAAA]
        (--queries: N queries for NAME in one write, all answered: the last answer is shown;
        --junk: an empty message and a response first, which get no answer; with --half-close,
        the end must then follow the answers: "no-end" otherwise)
        NOERROR addr,addr | NXDOMAIN | SERVFAIL | timeout
  nameprobe.py headeronly      a query header that promises a question and holds none:
        FORMERR LEN | rcode-N LEN | timeout
  nameprobe.py flood NAME COUNT   COUNT queries for NAME over UDP (50 every 10 ms), then the
        answers that come within 1 s: "servfail N" (how many were SERVFAIL)
  nameprobe.py burst NAME COUNT   COUNT queries for NAME over UDP as fast as they go, then the
        answers that come within 1 s: "answered N" (of any rcode)
  nameprobe.py resolve-many PREFIX SUFFIX COUNT   PREFIX0SUFFIX ... one query after the other,
        over UDP: "answered N" (how many NOERROR answers came)
  nameprobe.py tcphold COUNT      COUNT TCP connections to the DNS server, held: "open N", how
        many are still open 0.5 s later
  nameprobe.py tls ADDR PORT NAME [--segments N --pause S] [--big]
        sends a real ClientHello for NAME (N segments, S seconds apart; --big: about 1.6 KB like a
        post-quantum hello) to an echo server: echo | reset | closed | timeout
  nameprobe.py handshake ADDR PORT NAME   a full TLS handshake: tls-ok CN | reset | ...
  nameprobe.py http ADDR PORT HOST [--target T] [--method M]   a request head with Host (and
        target T, "/" by default; method M, GET by default): echo | reset | ...; with
        --half-close, the client's side shut after the head: echo-end when the echo and then the
        end come back
  nameprobe.py banner ADDR PORT           a server-first server: banner | reset | ...
  nameprobe.py raw ADDR PORT TEXT         TEXT and CRLF, neither a ClientHello nor an HTTP head,
        to an echo server: echo | reset | ...
  nameprobe.py slow ADDR PORT NAME        the ClientHello one byte a second: reset MS | ...
  nameprobe.py hold ADDR PORT NAME SECONDS  echo, "ready", then a byte every 0.1 s until an error
        or SECONDS: reset MS | alive
  nameprobe.py idle ADDR PORT NAME COUNT SECONDS  COUNT connections that each got their hello
        echoed, held SECONDS: "open N refused M" once they are tried, then held N
Every wait is bounded (--timeout, default 2 s)."""
import argparse
import errno
import os
import resource
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402
from held import still_open  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("kind")
ap.add_argument("args", nargs="*")
ap.add_argument("--server", default="192.0.2.53")
ap.add_argument("--tcp", action="store_true")
ap.add_argument("--half-close", action="store_true")
ap.add_argument("--target", default="/")
ap.add_argument("--queries", type=int, default=1)
ap.add_argument("--junk", action="store_true")
ap.add_argument("--method", default="GET")
ap.add_argument("--type", default="A")
ap.add_argument("--segments", type=int, default=1)
ap.add_argument("--pause", type=float, default=0)
ap.add_argument("--big", action="store_true")
ap.add_argument("--timeout", type=float, default=2.0)
a = ap.parse_args()
t0 = time.monotonic()


def out(*words):
    print(*words, flush=True)
    sys.exit(0)


def fail(e):
    if isinstance(e, socket.timeout):
        out("timeout")
    if isinstance(e, OSError) and e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE):
        out("reset", int((time.monotonic() - t0) * 1000))
    out("error", repr(e))


def client_hello(name, big=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if big:
        ctx.set_alpn_protocols(["p%03d" % i + "x" * 200 for i in range(6)])
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, outg, server_hostname=name)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def connect(addr, port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.connect((addr, port))
    return s


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        d = s.recv(n - len(got))
        if not d:
            out("closed")
        got += d
    return got


try:
    if a.kind == "flood":
        name, count = a.args[0], int(a.args[1])
        fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(count):  # 50 at a time, so that no socket buffer overflows
            s.sendto(dnsmsg.query(i & 0xFFFF, name, 1), (a.server, 53))
            if i % 50 == 49:
                time.sleep(0.01)
        n, end = 0, time.monotonic() + 1
        while time.monotonic() < end:
            s.settimeout(max(end - time.monotonic(), 0.01))
            try:
                m, _ = s.recvfrom(4096)
            except socket.timeout:
                break
            n += dnsmsg.parse(m)[1] == 2
        out("servfail", n)
    if a.kind == "burst":
        name, count = a.args[0], int(a.args[1])
        fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE: every answer fits
        s.setsockopt(socket.SOL_SOCKET, 32, 32 << 20)  # SO_SNDBUFFORCE
        for i in range(count):
            s.sendto(dnsmsg.query(i & 0xFFFF, name, 1), (a.server, 53))
        n, end = 0, time.monotonic() + 1
        while time.monotonic() < end:
            s.settimeout(max(end - time.monotonic(), 0.01))
            try:
                s.recvfrom(4096)
            except socket.timeout:
                break
            n += 1
        out("answered", n)
    if a.kind == "resolve-many":
        fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(a.timeout)
        n = 0
        for i in range(int(a.args[2])):
            s.sendto(dnsmsg.query(i & 0xFFFF, "%s%d%s" % (a.args[0], i, a.args[1]), 1),
                     (a.server, 53))
            try:
                m, _ = s.recvfrom(4096)
                n += dnsmsg.parse(m)[1] == 0
            except socket.timeout:
                pass
        out("answered", n)
    if a.kind == "tcphold":
        fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
        held = []
        for i in range(int(a.args[0])):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(a.timeout)
            s.connect((a.server, 53))
            held.append(s)
        time.sleep(0.5)
        out("open", still_open(held))
    if a.kind == "headeronly":
        # a query header that promises a question and holds none, over UDP
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(a.timeout)
        s.sendto(struct.pack(">HHHHHH", 0x5A17, 0x0100, 1, 0, 0, 0), (a.server, 53))
        r = s.recv(512)
        if len(r) < 12 or r[:2] != b"\x5a\x17" or not r[2] & 0x80:
            out("garbled", r.hex())
        out({1: "FORMERR"}.get(r[3] & 0xF, "rcode-%d" % (r[3] & 0xF)), len(r))
    if a.kind == "resolve":
        name = a.args[0]
        q = dnsmsg.query(os.getpid() & 0xFFFF, name, 28 if a.type == "AAAA" else 1)
        fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
        if a.tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(a.timeout)
            s.connect((a.server, 53))
            qs = [dnsmsg.query((os.getpid() + i) & 0xFFFF, name, 28 if a.type == "AAAA" else 1)
                  for i in range(a.queries)]
            junk = [b"", bytes([0, 1, 0x81, 0x80]) + bytes(8)] if a.junk else []
            s.sendall(b"".join(struct.pack("!H", len(x)) + x for x in junk + qs))
            if a.half_close:
                s.shutdown(socket.SHUT_WR)
            ids = set()
            for _ in qs:
                n = struct.unpack("!H", recv_exact(s, 2))[0]
                m = recv_exact(s, n)
                ids.add(struct.unpack("!H", m[:2])[0])
            if len(ids) != len(qs):
                out("answers", len(ids), "of", len(qs))
            if a.junk and a.half_close:
                try:
                    if s.recv(1) != b"":
                        out("more")
                except socket.timeout:
                    out("no-end")
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(a.timeout)
            s.sendto(q, (a.server, 53))
            m, _ = s.recvfrom(4096)
        _, rc, _, _, ans = dnsmsg.parse(m)
        words = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(rc, "RCODE%d" % rc)
        if m[2] & 0x02:
            words += "-TC"
        out(words, ",".join(v for _, t, _, v in ans if t in ("A", "AAAA")) or "-")
    addr, port = a.args[0], int(a.args[1])
    if a.kind in ("tls", "slow", "hold"):
        hello = client_hello(a.args[2], a.big)
        s = connect(addr, port)
        if a.kind == "slow":
            s.settimeout(10)
            for i in range(len(hello)):
                s.send(hello[i:i + 1])
                time.sleep(1)
            out("sent-all")
        k = max(1, a.segments)
        step = (len(hello) + k - 1) // k
        for i in range(0, len(hello), step):
            s.sendall(hello[i:i + step])
            if a.pause and i + step < len(hello):
                time.sleep(a.pause)
        back = recv_exact(s, len(hello))
        if back != hello:
            out("garbled")
        if a.kind == "tls":
            out("echo", len(hello))
        print("ready", flush=True)
        end = time.monotonic() + float(a.args[3])
        t0 = time.monotonic()
        while time.monotonic() < end:
            s.sendall(b"x")
            if s.recv(1) != b"x":
                out("closed", int((time.monotonic() - t0) * 1000))
            time.sleep(0.1)
        out("alive")
    if a.kind == "handshake":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(connect(addr, port), server_hostname=a.args[2])
        cert = s.getpeercert(binary_form=True)
        s.sendall(b"ping")
        out("tls-ok", len(cert), s.recv(4).decode())
    if a.kind == "http":
        req = ("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nameprobe\r\n\r\n"
               % (a.method, a.target, a.args[2])).encode()
        s = connect(addr, port)
        s.sendall(req)
        if a.half_close:
            s.shutdown(socket.SHUT_WR)
        if recv_exact(s, len(req)) != req:
            out("garbled")
        out("echo-end" if a.half_close and s.recv(1) == b"" else "echo")
    if a.kind == "banner":
        s = connect(addr, port)
        out("banner" if s.recv(7) == b"banner\n" else "other")
    if a.kind == "raw":
        line = (a.args[2] + "\r\n").encode()
        s = connect(addr, port)
        s.sendall(line)
        out("echo" if recv_exact(s, len(line)) == line else "garbled")
    if a.kind == "idle":
        count, secs = int(a.args[3]), float(a.args[4])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        hello = client_hello(a.args[2])
        held, refused = [], 0
        for _ in range(count):
            got = b""
            try:
                s = connect(addr, port)
                s.sendall(hello)
                while len(got) < len(hello):
                    d = s.recv(len(hello) - len(got))
                    if not d:
                        break
                    got += d
            except OSError:
                pass
            if got == hello:
                held.append(s)
            else:
                refused += 1
        print("open", len(held), "refused", refused, flush=True)
        time.sleep(secs)
        out("held", len(held))
    out("usage")
except (OSError, ssl.SSLError) as e:
    fail(e)
