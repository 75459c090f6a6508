#!/bin/sh
# bench/dns: latency sandnet's DNS forwarder adds. The same client (bench/dnslat.c: one query at a
# time, COUNT queries) asks the world's DNS server (tests/lib/dnsserver.py) directly from a plain
# namespace, and through sandnet from a sandbox (whose port-53 traffic the kernel redirects to the
# forwarder), for: a name no allow rule names (allow-all: nothing to learn), and a name an allow
# rule names (its answer feeds the kernel's learned sets; after the first query the forwarder knows
# it and answers without waiting on the kernel). Median of RUNS runs, interleaved.
# usage: bench/dns.sh SANDNETD DNSLAT [RUNS] [COUNT]
set -u
sandnetd=$1
dnslat=$2
runs=${3:-5}
count=${4:-2000}
here=$(cd "$(dirname "$0")" && pwd)
H=bd-$$-h W=bd-$$-w P=bd-$$-p S=bd$$ T=be$$ BENCH_SB="bd$$ be$$"
. "$here/lib.sh"
bench_init "$H" "$W" "$P"
sn_world "$H" "$W" 192.0.2.53/24 || exit 1
bench_plain "$H" "$P"
printf 'plain.test 300 A 198.51.100.1\nnamed.test 300 A 198.51.100.2\n' >"$tmp/zone"
ip netns exec "$W" python3 "$here/../tests/lib/dnsserver.py" --addr 192.0.2.53 --zone "$tmp/zone" \
	--log /dev/null --lifetime 3600 &
echo $! >"$tmp/dns.pid"
# one client sends 6,000 and more queries a second (one after the other), past a sandbox's
# default --dns-rate: without the limit, so that no query is dropped (the meter itself is one
# set lookup a packet; tests/integration/names.sh checks it)
bench_sandnetd "$sandnetd" "$H" --dns-upstream 192.0.2.53 --dns-rate 0
api() { ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes -d "$1" >/dev/null; }
api "{\"id\":\"$S\"}" || { echo "create failed"; cat "$tmp/log"; exit 1; }
api "{\"id\":\"$T\",\"network\":{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":[\"named.test\"]}]}}}" || exit 1
sleep 0.3
for ns in "$P" "sn-$S" "sn-$T"; do ip netns exec "$ns" "$dnslat" 192.0.2.53 plain.test 20 >/dev/null; done
direct="" fwd="" learned=""
for r in $(seq "$runs"); do
	direct="$direct $(ip netns exec "$P" "$dnslat" 192.0.2.53 plain.test "$count" | tr ' ' /)"
	fwd="$fwd $(ip netns exec "sn-$S" "$dnslat" 192.0.2.53 plain.test "$count" | tr ' ' /)"
	learned="$learned $(ip netns exec "sn-$T" "$dnslat" 192.0.2.53 named.test "$count" | tr ' ' /)"
done
python3 - "$direct" "$fwd" "$learned" "$count" <<'PY'
import statistics as st, sys
def r(s): return [[float(y) for y in x.split("/")] for x in s.split()]
d, f, l = r(sys.argv[1]), r(sys.argv[2]), r(sys.argv[3])
print("DNS round trip, ms, %s sequential queries per run (median of %d runs: p50 / p99 / mean; lost)" % (sys.argv[4], len(d)))
for name, v in (("upstream directly", d), ("through sandnet", f), ("through sandnet, learned name", l)):
    print("  %-32s p50 %.4f  p99 %.4f  mean %.4f  lost %d" % (name, st.median(x[0] for x in v),
          st.median(x[1] for x in v), st.median(x[2] for x in v), sum(x[3] for x in v)))
base = st.median(x[0] for x in d)
print("  added p50: %.4f ms (plain name), %.4f ms (learned name)" % (
    st.median(x[0] for x in f) - base, st.median(x[0] for x in l) - base))
PY
