#!/usr/bin/env python3
"""Pieces of the flip test (tests/integration/flip.sh).

  flip.py recv ADDR PORT SECONDS OUT      receives datagrams; writes their send stamps to OUT
  flip.py send ADDR PORT SECONDS OUT      sends datagrams stamped with time.monotonic_ns() taken
                                          before sendto(); writes "stamp end" lines to OUT, end
                                          being the time sendto() returned
  flip.py flip API KEY ID N OUT           N times: PUT deny, PUT allow; writes for each flip the
                                          time the deny PUT returned and the next allow PUT began
All clocks are CLOCK_MONOTONIC, which network namespaces share."""
import http.client
import json
import socket
import sys
import time

mode = sys.argv[1]
if mode == "recv":
    addr, port, secs, out = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    stamps = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            data, _ = s.recvfrom(64)
            stamps.append(int(data))
        except socket.timeout:
            pass
    with open(out, "w") as f:
        f.write("\n".join(map(str, stamps)) + "\n")
elif mode == "send":
    addr, port, secs, out = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + secs
    log = []
    while time.monotonic() < end:
        t1 = time.monotonic_ns()
        try:
            s.sendto(str(t1).encode(), (addr, port))
        except OSError:
            pass  # a reject answers with ICMP; the next send may see it
        log.append((t1, time.monotonic_ns()))
        if len(log) % 16 == 0:
            time.sleep(0.0002)  # leave CPU to the daemon: two cores here
    with open(out, "w") as f:
        f.write("".join("%d %d\n" % p for p in log))
    print(len(log))
elif mode == "flip":
    api, key, sid, n, out = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
    host, port = api.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    deny = json.dumps({"egress": {"rules": [{"action": "deny", "to": ["198.51.100.1"]}]}})
    allow = "{}"
    windows = []

    def put(body):
        conn.request("PUT", "/v1/sandboxes/%s/network" % sid, body,
                     {"X-API-Key": key, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit("PUT answered %d" % r.status)

    for _ in range(n):
        put(deny)
        deny_returned = time.monotonic_ns()
        time.sleep(0.002)
        allow_begins = time.monotonic_ns()
        put(allow)
        windows.append((deny_returned, allow_begins))
        time.sleep(0.002)
    with open(out, "w") as f:
        for a, b in windows:
            f.write("%d %d\n" % (a, b))
elif mode == "check":
    # flip.py check WINDOWS STAMPS SENT: counts received datagrams whose whole send (from the
    # stamp to sendto()'s return) lies inside a window, and datagrams sent inside windows at all
    import bisect
    windows = sorted(tuple(map(int, l.split())) for l in open(sys.argv[2]) if l.strip())
    received = set(int(l) for l in open(sys.argv[3]) if l.strip())
    sent = [tuple(map(int, l.split())) for l in open(sys.argv[4]) if l.strip()]
    starts = [w[0] for w in windows]
    leaked = inside = 0
    for t1, t2 in sent:
        i = bisect.bisect_right(starts, t1) - 1
        if i >= 0 and t2 <= windows[i][1]:
            inside += 1
            leaked += t1 in received
    print(leaked, len(received), len(windows), inside)
