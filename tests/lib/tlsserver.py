#!/usr/bin/env python3
"""A TLS server for tests that answers several SNI names (one certificate per name, chosen by
SNI) and answers "ping" with "pong". usage: tlsserver.py ADDR PORT CERTDIR NAME... [READYFILE]
CERTDIR holds NAME.pem (key and certificate) for each NAME; the first is the default."""
import socket
import ssl
import sys
import threading
import time

addr, port, certdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = [n for n in sys.argv[4:] if not n.startswith("--") and "/" not in n]
ready = [n for n in sys.argv[4:] if "/" in n]
ctxs = {}
for n in names:
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain("%s/%s.pem" % (certdir, n))
    ctxs[n] = c
default = ctxs[names[0]]


def pick(sock, name, _ctx):
    if name in ctxs:
        sock.context = ctxs[name]


default.sni_callback = pick
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(64)
ls.settimeout(1)
end = time.monotonic() + 300
for r in ready:
    open(r, "w").close()


def serve(c):
    try:
        c.settimeout(3)
        t = default.wrap_socket(c, server_side=True)
        if t.recv(4) == b"ping":
            t.sendall(b"pong")
        t.close()
    except (OSError, ssl.SSLError):
        c.close()


while time.monotonic() < end:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
