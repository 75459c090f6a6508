#!/usr/bin/env python3
"""bench/update: policy update latency through sandnetd's API (PUT to response, rules committed),
for a policy of 10 rules and for 1,000, 10,000 and 100,000 CIDRs, and, in the same run, `nft -f` of
the same set contents (one transaction: flush the set, add the elements). Runs inside the host
namespace of bench/update.sh. Median of RUNS runs each.

usage: update.py API KEY SANDBOX RUNS"""
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time

api, key, sid, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = api.split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=600)
rnd = random.Random(7)


def put(body):
    t0 = time.perf_counter()
    conn.request("PUT", "/v1/sandboxes/%s/network" % sid, body,
                 {"X-API-Key": key, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise SystemExit("PUT answered %d" % r.status)
    return dt


def cidrs(n, salt):
    # distinct /24s (interval elements), as BASELINES.md measured
    out, seen = [], set()
    while len(out) < n:
        a = rnd.randrange(1 << 24)
        if a in seen or (a >> 16) in (10, 127, 169, 0) or (a >> 20) == 14:
            continue
        seen.add(a)
        out.append("%d.%d.%d.0/24" % (a >> 16, (a >> 8) & 255, a & 255))
    return out


def small(salt):
    rules = [{"action": "allow", "to": ["198.51.%d.0/24" % ((salt + i) % 250)], "ports": [443]}
             for i in range(9)]
    rules.append({"action": "deny", "to": ["203.0.113.%d" % (salt % 250)]})
    return json.dumps({"egress": {"mode": "block-all", "rules": rules}})


def big(n, salt):
    return json.dumps({"egress": {"mode": "block-all",
                                  "rules": [{"action": "allow", "to": cidrs(n, salt)}]}})


def nft_time(n):
    elems = cidrs(n, 99)
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write("add table inet bench\n")
        f.write("add set inet bench s { type ipv4_addr; flags interval; }\n")
        f.write("flush set inet bench s\n")
        f.write("add element inet bench s { %s }\n" % ", ".join(elems))
        path = f.name
    subprocess.run(["nft", "-f", path], check=True)  # the set exists and is full
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["nft", "-f", path], check=True)
        times.append(time.perf_counter() - t0)
    subprocess.run(["nft", "delete", "table", "inet", "bench"], check=True)
    return statistics.median(times)


print("%-28s %14s %14s" % ("policy", "sandnet PUT", "nft -f (sets)"))
for label, make, n in (("10 rules", None, 10), ("1,000 CIDRs", big, 1000),
                       ("10,000 CIDRs", big, 10000), ("100,000 CIDRs", big, 100000)):
    bodies = [small(s) if make is None else make(n, s) for s in (1, 2)]
    put(bodies[0])  # warm: the sandbox holds a policy of this size
    times = [put(bodies[(i + 1) % 2]) for i in range(runs)]
    nft = nft_time(n) if make is not None else None
    print("%-28s %11.1f ms %11s" % (label, statistics.median(times) * 1e3,
                                    "%.1f ms" % (nft * 1e3) if nft is not None else "-"))
