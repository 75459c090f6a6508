#!/usr/bin/env python3
"""bench/create: sandbox create latency (POST to response: namespace, links, rules, store) and
sandnetd's memory per sandbox, with N sandboxes; also the update latency of a small policy with N
other sandboxes present. Runs inside bench/create.sh's host namespace.

usage: create.py API KEY PID N"""
import http.client
import statistics
import sys
import time

api, key, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = api.split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=60)


def call(method, path, body=None):
    t0 = time.perf_counter()
    conn.request(method, path, body, {"X-API-Key": key, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, time.perf_counter() - t0


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


before = rss_kib()
times = []
for i in range(n):
    st, dt = call("POST", "/v1/sandboxes", '{"id":"bc%05d"}' % i)
    if st != 201:
        raise SystemExit("create %d answered %d" % (i, st))
    times.append(dt)
after = rss_kib()
upd = []
for i in range(11):
    body = '{"egress":{"rules":[{"action":"deny","to":["203.0.113.%d"]}]}}' % i
    st, dt = call("PUT", "/v1/sandboxes/bc00000/network", body)
    upd.append(dt)
print("sandboxes:            %d" % n)
print("create latency:       median %.1f ms, p90 %.1f ms, first 100 %.1f ms, last 100 %.1f ms" % (
    statistics.median(times) * 1e3, sorted(times)[int(n * 0.9)] * 1e3,
    statistics.median(times[:100]) * 1e3, statistics.median(times[-100:]) * 1e3))
print("sandnetd memory:      %d KiB before, %d KiB after = %.1f KiB per sandbox (VmRSS)" % (
    before, after, (after - before) / n))
print("small update with %d other sandboxes: median %.1f ms" % (n - 1, statistics.median(upd[1:]) * 1e3))
t0 = time.perf_counter()
for i in range(n):
    call("DELETE", "/v1/sandboxes/bc%05d" % i)
print("delete:               %.1f ms each" % ((time.perf_counter() - t0) / n * 1e3))
