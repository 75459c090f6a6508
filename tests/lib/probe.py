#!/usr/bin/env python3
"""Sandbox-side probe. Prints one word and the elapsed milliseconds.

  probe.py tcp ADDR PORT [--src ADDR]   open | reset | unreach | timeout
  probe.py udp ADDR PORT [--src ADDR]   reply | none
  probe.py hold ADDR PORT SECONDS       connects, waits, sends a byte: echo | reset | timeout | ...
  probe.py flood ADDR PORT SECONDS      UDP datagrams as fast as it can for SECONDS (200,000 at
                                        most), answers ignored: sent N
  probe.py conns ADDR PORT SECONDS --count N   N TCP connections one after the other, the open
                                        ones held SECONDS, then closed: open K reset R other O
Every attempt is bounded by --timeout seconds (default 1)."""
import argparse
import errno
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("kind")
ap.add_argument("addr")
ap.add_argument("port", type=int)
ap.add_argument("wait", type=float, nargs="?", default=0)
ap.add_argument("--src")
ap.add_argument("--timeout", type=float, default=1.0)
ap.add_argument("--count", type=int, default=1)
a = ap.parse_args()
fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
t0 = time.monotonic()


def done(word):
    print(word, int((time.monotonic() - t0) * 1000))
    sys.exit(0)


def classify(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE):
        return "reset"
    if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
        return "unreach"
    return "error-%d" % e.errno


if a.kind == "flood":
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    n, end = 0, time.monotonic() + a.wait
    while n < 200000 and time.monotonic() < end:
        try:
            s.sendto(b"x", (a.addr, a.port))
            n += 1
        except OSError:
            time.sleep(0.001)
    done("sent %d" % n)
if a.kind == "conns":
    held, words = [], {"open": 0, "reset": 0, "other": 0}
    for i in range(a.count):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        try:
            s.connect((a.addr, a.port))
            held.append(s)
            words["open"] += 1
        except OSError as e:
            words["reset" if classify(e) == "reset" else "other"] += 1
            s.close()
    time.sleep(a.wait)
    for s in held:
        s.close()
    done("open %d reset %d other %d" % (words["open"], words["reset"], words["other"]))
if a.kind in ("tcp", "hold"):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    if a.src:
        s.bind((a.src, 0))
    try:
        s.connect((a.addr, a.port))
    except OSError as e:
        done(classify(e))
    if a.kind == "tcp":
        done("open")
    time.sleep(a.wait)
    try:
        s.sendall(b"x")
        data = s.recv(1)
        done("echo" if data == b"x" else "closed")
    except OSError as e:
        done(classify(e))
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(a.timeout)
    if a.src:
        s.bind((a.src, 0))
    try:
        s.sendto(b"ping", (a.addr, a.port))
        data, _ = s.recvfrom(100)
        done("reply" if data == b"ping" else "other")
    except OSError as e:
        done("none" if isinstance(e, socket.timeout) else classify(e))
