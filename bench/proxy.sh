#!/bin/sh
# bench/proxy: the transparent proxy against haproxy 2.6 (TCP mode, splice) and against no proxy,
# in the same run. Every connection starts with a TLS ClientHello for bench.test, then:
#   throughput: one connection sends for SECONDS (tcpbench blast), Gbit/s;
#   connection rate: CONC clients connect, send the hello, wait for one byte back, close
#   (tcpbench rate), connections/s and p50/p99 latency.
# Median of RUNS runs each, the three paths interleaved.
#
#   sandbox sn-<id> (policy: block-all, allow bench.test)       \
#   plain netns P, to 192.0.2.2:443, redirected to haproxy       > host H (sandnetd)  -- world W
#     (nft redirect in H, like sandnet's: both are transparent)  |                      tcpbench
#   plain netns P, to 192.0.2.2:8443, straight (no proxy)       /                       sinks
# The sandbox never resolves bench.test, so the kernel sends its TCP to the proxy; strict names
# are on: the proxy looks bench.test up itself (world DNS, 192.0.2.53) once and remembers it.
# usage: bench/proxy.sh SANDNETD TCPBENCH [RUNS] [SECONDS] [CONC]
set -u
sandnetd=$1
tcpbench=$2
runs=${3:-5}
secs=${4:-3}
conc=${5:-32}
here=$(cd "$(dirname "$0")" && pwd)
H=bp-$$-h W=bp-$$-w P=bp-$$-p S=bp$$ BENCH_SB=bp$$
command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)"; exit 1; }
. "$here/lib.sh"
bench_init "$H" "$W" "$P"
sn_world "$H" "$W" 192.0.2.2/24 192.0.2.53/24 || exit 1
bench_plain "$H" "$P"
# connection-rate runs open hundreds of thousands of connections: reuse TIME_WAIT ports (clients
# and the proxies' own upstream connections), as any load generator setup does
for n in $H $W $P; do
	ip netns exec "$n" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
done
echo "bench.test 300 A 192.0.2.2" >"$tmp/zone"
ip netns exec "$W" python3 "$here/../tests/lib/dnsserver.py" --addr 192.0.2.53 --zone "$tmp/zone" \
	--log /dev/null --lifetime 3600 &
echo $! >"$tmp/dns.pid"
ip netns exec "$W" "$tcpbench" sink 443 &
echo $! >"$tmp/sink.pid"
ip netns exec "$W" "$tcpbench" sink 8443 &
echo $! >"$tmp/sink2.pid"
# haproxy as a transparent proxy: P's port-443 traffic is redirected to it, as a sandbox's is to
# sandnet (the same conntrack NAT work on both paths)
ip netns exec "$H" nft -f - <<NFT
table inet bench {
	chain pre { type nat hook prerouting priority dstnat; iifname "pl0" tcp dport 443 redirect to :18443; }
}
NFT
cat >"$tmp/haproxy.cfg" <<CFG
global
	maxconn 4000
	nbthread 2
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	option splice-auto
frontend f
	bind 0.0.0.0:18443
	default_backend b
backend b
	server s 192.0.2.2:443
CFG
ip netns exec "$H" haproxy -f "$tmp/haproxy.cfg" -D -p "$tmp/haproxy.pid"
bench_sandnetd "$sandnetd" "$H" --dns-upstream 192.0.2.53 --proxy-max-conns 100000
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d "{\"id\":\"$S\",\"network\":{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":[\"bench.test\"]}]}}}" \
	>/dev/null || { echo "create failed"; cat "$tmp/log"; exit 1; }
python3 - "$tmp/hello" <<'PY'
import ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
s = ctx.wrap_bio(i, o, server_hostname="bench.test")
try:
    s.do_handshake()
except ssl.SSLWantReadError:
    pass
open(sys.argv[1], "wb").write(o.read())
PY
sleep 0.5
ip netns exec "sn-$S" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
ip netns exec "sn-$S" ping -c1 -W1 192.0.2.2 >/dev/null 2>&1
# warm up each path once (ARP, the proxy's lookup)
ip netns exec "sn-$S" "$tcpbench" blast 192.0.2.2 443 0.2 "$tmp/hello" >/dev/null
ip netns exec "$P" "$tcpbench" blast 192.0.2.2 443 0.2 "$tmp/hello" >/dev/null
ip netns exec "$P" "$tcpbench" blast 192.0.2.2 8443 0.2 "$tmp/hello" >/dev/null
sand="" hap="" direct="" rs="" rh="" rd=""
for r in $(seq "$runs"); do
	sand="$sand $(ip netns exec "sn-$S" "$tcpbench" blast 192.0.2.2 443 "$secs" "$tmp/hello")"
	hap="$hap $(ip netns exec "$P" "$tcpbench" blast 192.0.2.2 443 "$secs" "$tmp/hello")"
	direct="$direct $(ip netns exec "$P" "$tcpbench" blast 192.0.2.2 8443 "$secs" "$tmp/hello")"
	rs="$rs $(ip netns exec "sn-$S" "$tcpbench" rate 192.0.2.2 443 "$secs" "$conc" "$tmp/hello" | tr ' ' /)"
	rh="$rh $(ip netns exec "$P" "$tcpbench" rate 192.0.2.2 443 "$secs" "$conc" "$tmp/hello" | tr ' ' /)"
	rd="$rd $(ip netns exec "$P" "$tcpbench" rate 192.0.2.2 8443 "$secs" "$conc" "$tmp/hello" | tr ' ' /)"
done
grep -c "proxy:.*denied" "$tmp/log" | sed 's/^/proxy denials during the run: /'
python3 - "$sand" "$hap" "$direct" "$rs" "$rh" "$rd" <<'PY'
import statistics as st, sys
def f(s): return [float(x) for x in s.split()]
def r(s): return [[float(y) for y in x.split("/")] for x in s.split()]
s, h, d = f(sys.argv[1]), f(sys.argv[2]), f(sys.argv[3])
print("throughput, Gbit/s (median of %d; runs)" % len(s))
for name, v in (("sandnet proxy (name rule)", s), ("haproxy 2.6 tcp, splice, redirect", h), ("direct, no proxy", d)):
    print("  %-28s %7.2f   (%s)" % (name, st.median(v), " ".join("%.2f" % x for x in v)))
print("  sandnet / haproxy: %.2fx" % (st.median(s) / st.median(h)))
print("connection rate, connections/s; p50 / p99 ms (median of runs; failed connects)")
rates = {}
for name, v in (("sandnet proxy (name rule)", r(sys.argv[4])), ("haproxy 2.6 tcp, redirect", r(sys.argv[5])), ("direct, no proxy", r(sys.argv[6]))):
    rates[name] = st.median(x[0] for x in v)
    print("  %-28s %7.0f   p50 %.3f  p99 %.3f  failed %d   (%s)" % (name, rates[name],
          st.median(x[1] for x in v), st.median(x[2] for x in v), sum(x[3] for x in v),
          " ".join("%.0f" % x[0] for x in v)))
print("  sandnet / haproxy: %.2fx" % (rates["sandnet proxy (name rule)"] / rates["haproxy 2.6 tcp, redirect"]))
PY
