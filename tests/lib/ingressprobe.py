#!/usr/bin/env python3
"""Client-side probes for the ingress tests. Prints one line.

  ingressprobe.py keepalive ADDR PORT HOST N     N requests for /echo on one connection; prints the
        status codes, comma-separated (after each request it waits for the file
        ./step<i> when --steps DIR is given, so the test can change the policy in between)
  ingressprobe.py ws ADDR PORT HOST [--hold S]   WebSocket handshake and an echoed text frame:
        "echo", then (with --hold) a frame every 0.1 s until the connection ends: "closed MS";
        with --close, a close frame, after which the server closes: "echo ended" when the end
        reaches the client (with --shut, the client's side is shut with the close frame);
        --conn V: the Connection field's value (Upgrade by default)
  ingressprobe.py seq ADDR PORT REQUEST... [--pause S] [--pipeline | --each]
        raw requests ("\r\n" written as such) on one connection, each after the last answer (S
        seconds later), or all at once (--pipeline), or each on a connection of its own (--each):
        the status codes, space-separated; "CODE:N" when an answer says {"bytes": N}, and with
        --ports "CODE@P" when it says {"port": P}
  ingressprobe.py seq ADDR PORT REQUEST --to-end [--shut]
        one request (with --shut, corked together with the end of the client's side), then
        everything until the proxy closes: "CODE BODY"
  ingressprobe.py slowloris ADDR PORT HOST       a request head, one byte a second: "cut MS"
  ingressprobe.py idle ADDR PORT COUNT SECONDS   COUNT open connections that sent nothing;
        prints "open N" when all are open, then "held N" (still open after SECONDS)"""
import argparse
import base64
import os
import re
import resource
import socket
import sys
import time

from held import still_open

ap = argparse.ArgumentParser()
ap.add_argument("kind")
ap.add_argument("args", nargs="*")
ap.add_argument("--steps")
ap.add_argument("--hold", type=float, default=0)
ap.add_argument("--close", action="store_true")
ap.add_argument("--pause", type=float, default=0)
ap.add_argument("--pipeline", action="store_true")
ap.add_argument("--each", action="store_true")
ap.add_argument("--to-end", action="store_true")
ap.add_argument("--shut", action="store_true")
ap.add_argument("--ports", action="store_true")
ap.add_argument("--conn", default="Upgrade")
ap.add_argument("--source", help="the local address to connect from")
a = ap.parse_intermixed_args()
t0 = time.monotonic()


def out(*w):
    print(*w, flush=True)
    sys.exit(0)


def conn(addr, port, timeout=5):
    src = (a.source, 0) if a.source else None
    s = socket.create_connection((addr, int(port)), timeout=timeout, source_address=src)
    return s


def read_response(f):
    line = f.readline()
    if not line:
        return None, b""
    status = int(line.split()[1])
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    if status < 200 or status in (204, 304):  # no body, whatever the length says
        length = 0
    return status, f.read(length)


if a.kind == "seq":
    addr, port = a.args[0], a.args[1]
    reqs = [r.encode().decode("unicode_escape").encode("latin-1") for r in a.args[2:]]
    codes = []

    def note(st, body):
        m = re.search(rb'"bytes": (\d+)', body)
        p = a.ports and re.search(rb'^\{"port": (\d+)', body)
        codes.append(str(st) + (":" + m.group(1).decode() if m else "") +
                     ("@" + p.group(1).decode() if p else ""))

    if a.to_end:
        s = conn(addr, port)
        if a.shut:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        s.sendall(reqs[0])
        if a.shut:
            s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        except OSError as e:
            out(type(e).__name__)
        head, _, body = data.partition(b"\r\n\r\n")
        out(head.split(b" ")[1].decode() if b" " in head else "-", body.decode())
    if a.each:
        for r in reqs:
            s = conn(addr, port)
            s.sendall(r)
            note(*read_response(s.makefile("rb")))
            s.close()
        out(" ".join(codes))
    s = conn(addr, port)
    f = s.makefile("rb")
    if a.pipeline:
        s.sendall(b"".join(reqs))
    for r in reqs:
        if not a.pipeline:
            s.sendall(r)
        try:
            note(*read_response(f))
        except (OSError, ValueError, IndexError) as e:
            codes.append(type(e).__name__)
            break
        time.sleep(a.pause)
    out(" ".join(codes))


if a.kind == "keepalive":
    addr, port, host, n = a.args[0], a.args[1], a.args[2], int(a.args[3])
    s = conn(addr, port)
    f = s.makefile("rb")
    codes = []
    for i in range(n):
        if a.steps:
            end = time.monotonic() + 10
            while not os.path.exists(os.path.join(a.steps, "step%d" % i)) and time.monotonic() < end:
                time.sleep(0.05)
        try:
            s.sendall(("GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
            st, body = read_response(f)
        except OSError:
            st = None
        codes.append(str(st))
        if a.steps:
            open(os.path.join(a.steps, "done%d" % i), "w").close()
        if st != 200:
            break
    out(",".join(codes))
if a.kind == "ws":
    addr, port, host = a.args[0], a.args[1], a.args[2]
    s = conn(addr, port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: %s\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, a.conn, key)).encode())
    f = s.makefile("rb")
    line = f.readline()
    if b" 101 " not in line:
        out("status", line.decode().strip())
    while f.readline() not in (b"\r\n", b""):
        pass

    def frame(text):
        d = text.encode()
        m = os.urandom(4)
        return bytes([0x81, 0x80 | len(d)]) + m + bytes(b ^ m[i % 4] for i, b in enumerate(d))

    def echo(text):
        s.sendall(frame(text))
        h = f.read(2)
        if len(h) < 2:
            return None
        return f.read(h[1] & 0x7F).decode()

    if echo("hello") != "hello":
        out("no-echo")
    if a.close:
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        if a.shut:
            s.shutdown(socket.SHUT_WR)
        try:
            out("echo ended" if f.read(1) == b"" else "echo more")
        except OSError as e:
            out("echo", type(e).__name__)
    if not a.hold:
        out("echo")
    print("echo", flush=True)
    t1 = time.monotonic()
    while time.monotonic() - t1 < a.hold:
        try:
            if echo("ping") != "ping":
                out("closed", int((time.monotonic() - t1) * 1000))
        except OSError:
            out("closed", int((time.monotonic() - t1) * 1000))
        time.sleep(0.1)
    out("alive")
if a.kind == "slowloris":
    addr, port, host = a.args[0], a.args[1], a.args[2]
    s = conn(addr, port, timeout=30)
    head = ("GET /echo HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode() + b"a" * 100
    try:
        for b in head:
            s.send(bytes([b]))
            time.sleep(1)
            s.settimeout(0.01)
            try:
                if s.recv(4096) == b"" or True:
                    out("cut", int((time.monotonic() - t0) * 1000))
            except socket.timeout:
                pass
            s.settimeout(30)
    except OSError:
        out("cut", int((time.monotonic() - t0) * 1000))
    out("not-cut")
if a.kind == "idle":
    addr, port, count, secs = a.args[0], a.args[1], int(a.args[2]), float(a.args[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = [conn(addr, port) for _ in range(count)]
    print("open", len(socks), flush=True)
    time.sleep(secs)
    out("held", still_open(socks))
out("usage")
