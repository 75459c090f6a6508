#!/usr/bin/env python3
"""HTTP/1.1 test server for the ingress tests, run inside a sandbox: keep-alive, several ports.

  GET /echo, /  {"port", "host", "xff", "xfp", "xfh", "conn", "path", "peer"}: what it saw (conn: a
                number per TCP connection, so a client can tell a kept-alive upstream connection;
                peer: the connection's source address)
  POST /upload  reads the body (Content-Length or chunked) and answers {"bytes": N}
  GET /ws       a WebSocket handshake, then echoes every text frame
  GET /slow     answers after 30 s (for upstream timeouts)
  GET /drop-next  an answer; the next request on this connection gets none: the connection
                closes when it arrives (a keep-alive timeout crossing a request)
  GET /big?N    N zero bytes, chunked, written as fast as the connection takes them
  GET /eof      a body without a length, ended by closing the connection
  GET /bye-later  an answer, then 0.3 s later the connection closes (an idle keep-alive timeout)
  GET /408-next  an answer, then 0.2 s later an unasked 408 on the same connection (as servers
                send before closing an idle one)
  GET /bye      a complete answer (with a length and no "Connection: close"), then the connection
                closes, as a server's keep-alive timeout does
  GET /headers  [[name, value], ...]: every header field it saw, in order
  GET /304      304 Not Modified with the Content-Length of the representation it stands for, and
                no body (RFC 9110 8.6)
usage: httpsrv.py PORT[,PORT...] [--ready FILE] [--lifetime S]"""
import base64
import hashlib
import itertools
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

conn_ids = itertools.count(1)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.conn_id = next(conn_ids)

    def log_message(self, *a):
        pass

    def send_json(self, obj, code=200):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def dropped(self):
        if getattr(self, "drop_next", False):
            self.close_connection = True
            return True
        return False

    def do_GET(self):
        if self.dropped():
            return
        if self.path.startswith("/drop-next"):
            self.drop_next = True
            self.send_json({"conn": self.conn_id})
        elif self.path.startswith("/echo") or self.path.startswith("/?") or self.path == "/":
            self.send_json({"port": self.server.server_address[1], "host": self.headers.get("Host"),
                            "xff": self.headers.get("X-Forwarded-For"),
                            "xfp": self.headers.get("X-Forwarded-Proto"),
                            "xfh": self.headers.get("X-Forwarded-Host"), "conn": self.conn_id,
                            "path": self.path, "peer": self.client_address[0]})
        elif self.path.startswith("/headers"):
            self.send_json([[k, v] for k, v in self.headers.items()])
        elif self.path.startswith("/ws"):
            key = self.headers.get("Sec-WebSocket-Key", "")
            acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", acc)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            try:
                while True:
                    h = self.rfile.read(2)
                    if len(h) < 2:
                        return
                    n = h[1] & 0x7F
                    if n == 126:
                        n = struct.unpack("!H", self.rfile.read(2))[0]
                    mask = self.rfile.read(4) if h[1] & 0x80 else b"\0\0\0\0"
                    data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                    if h[0] & 0x0F == 8:
                        return
                    out = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + struct.pack("!H", len(data))
                    self.wfile.write(out + data)
                    self.wfile.flush()
            except OSError:
                return
        elif self.path.startswith("/bye-later"):
            self.send_json({"conn": self.conn_id})
            conn = self.connection

            def bye():
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threading.Timer(0.3, bye).start()
        elif self.path.startswith("/408-next"):
            self.send_json({"conn": self.conn_id})
            w = self.wfile

            def late():
                try:
                    w.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n")
                except (OSError, ValueError):
                    pass
            threading.Timer(0.2, late).start()
        elif self.path.startswith("/bye"):
            self.send_json({"bye": self.conn_id})
            self.close_connection = True
        elif self.path.startswith("/big?"):
            left = int(self.path[5:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"\0" * 65536
            while left:
                k = min(left, len(block))
                self.wfile.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                left -= k
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/eof"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        elif self.path.startswith("/304"):
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", "1234")
            self.end_headers()
        elif self.path.startswith("/slow"):
            time.sleep(30)
            self.send_json({"slow": True})
        else:
            self.send_json({"error": "no such path"}, 404)

    def do_POST(self):
        if self.dropped():
            return
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        return
                    left -= len(d)
                n += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    return
                left -= len(d)
                n += len(d)
        self.send_json({"bytes": n})


ports = [int(p) for p in sys.argv[1].split(",")]
ready = sys.argv[sys.argv.index("--ready") + 1] if "--ready" in sys.argv else None
life = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 300
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128
for p in ports:
    s = ThreadingHTTPServer(("0.0.0.0", p), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
if ready:
    open(ready, "w").close()
time.sleep(life)
