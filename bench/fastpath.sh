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
H=bf-$$-h W=bf-$$-w P=bf-$$-p S=bf$$
tmp=$(mktemp -d)
cleanup() {
	for p in "$tmp"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	sleep 0.3
	. "$here/../tests/lib/sandnetd.sh"
	sn_forget "$S"
	for n in $H $W $P; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
command -v iperf3 >/dev/null || { echo "iperf3 is not installed (apt-get install iperf3)"; exit 1; }
set -e
for n in $H $W $P; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add w0 netns "$H" type veth peer name w1 netns "$W"
ip -n "$H" addr add 192.0.2.1/24 dev w0; ip -n "$H" link set w0 up
ip -n "$W" addr add 192.0.2.2/24 dev w1; ip -n "$W" link set w1 up
ip -n "$W" route add default via 192.0.2.1
# the plain path: a namespace joined like a sandbox, with no rules anywhere
ip link add eth0 netns "$P" type veth peer name pl0 netns "$H"
ip -n "$P" addr add 10.201.0.2/30 dev eth0; ip -n "$P" link set eth0 up
ip -n "$P" route add default via 10.201.0.1
ip -n "$H" addr add 10.201.0.1/30 dev pl0; ip -n "$H" link set pl0 up
ip -n "$W" route add 10.201.0.0/30 via 192.0.2.1
ip -n "$W" route add 10.200.0.0/16 via 192.0.2.1
ip netns exec "$H" sysctl -qw net.ipv4.ip_forward=1
set +e
printf 'k team\n' >"$tmp/keys"
. "$here/../tests/lib/sandnetd.sh"
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/log" --log-level warn || exit 1
echo $SN_PID >"$tmp/sandnetd.pid"
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
PY
