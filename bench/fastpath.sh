#!/bin/sh
# bench/fastpath: iperf3 TCP throughput from a sandbox to the world through sandnet with a
# 10,000-rule policy, against the same topology without sandnet (a plain namespace joined the same
# way), in the same run; median of RUNS runs of SECONDS each.
#
#   sn-<id> / plain netns P  --veth--  host netns H (sandnetd)  --veth--  world W (iperf3 -s)
# usage: bench/fastpath.sh SANDNETD [RUNS] [SECONDS]
set -u
sandnetd=$1
runs=${2:-5}
secs=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
H=bf-$$-h W=bf-$$-w P=bf-$$-p S=bf$$ BENCH_SB=bf$$
command -v iperf3 >/dev/null || { echo "iperf3 is not installed (apt-get install iperf3)"; exit 1; }
. "$here/lib.sh"
bench_init "$H" "$W" "$P"
sn_world "$H" "$W" 192.0.2.2/24 || exit 1
# the plain path: a namespace joined like a sandbox, with no rules anywhere
bench_plain "$H" "$P"
ip -n "$W" route add 10.201.0.0/30 via 192.0.2.1
ip -n "$W" route add 10.200.0.0/16 via 192.0.2.1
bench_sandnetd "$sandnetd" "$H"
# 10,000 rules: 9,999 that do not match the traffic (each its own /32, ports, protocol), then the
# allow that does: every packet walks the whole list
python3 - "$tmp/policy.json" <<'PY'
import json, sys
rules = [{"action": "deny", "to": ["198.18.%d.%d" % (i // 250, i % 250 + 1)], "ports": [1000 + i % 50000],
          "protocol": "tcp"} for i in range(9999)]
rules.append({"action": "allow", "to": ["192.0.2.0/24"]})
json.dump({"egress": {"mode": "block-all", "rules": rules}}, open(sys.argv[1], "w"))
PY
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d "{\"id\":\"$S\"}" >/dev/null || { echo "create failed"; cat "$tmp/log"; exit 1; }
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X PUT http://127.0.0.1:7080/v1/sandboxes/$S/network \
	--data-binary @"$tmp/policy.json" >/dev/null || { echo "policy failed"; cat "$tmp/log"; exit 1; }
ip netns exec "$W" iperf3 -s -D -I "$tmp/iperf.pid" >/dev/null
sleep 0.5
gbps() { ip netns exec "$1" iperf3 -c 192.0.2.2 -t "$secs" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
plain="" sand=""
for r in $(seq "$runs"); do
	plain="$plain $(gbps "$P")"
	sand="$sand $(gbps "sn-$S")"
done
python3 - "$plain" "$sand" <<'PY'
import statistics, sys
p = [float(x) for x in sys.argv[1].split()]
s = [float(x) for x in sys.argv[2].split()]
mp, ms = statistics.median(p), statistics.median(s)
print("without sandnet:             median %.2f Gbit/s  (%s)" % (mp, " ".join("%.2f" % x for x in p)))
print("sandnet, 10,000-rule policy: median %.2f Gbit/s  (%s)" % (ms, " ".join("%.2f" % x for x in s)))
print("ratio: %.2f" % (ms / mp))
# each run's pair was measured back to back: the median of their ratios is less exposed to the
# guest's drift between runs
r = sorted(b / a for a, b in zip(p, s))
print("ratio of each run's pair: median %.2f  (%s)" % (statistics.median(r), " ".join("%.2f" % x for x in r)))
PY
