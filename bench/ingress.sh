#!/bin/sh
# bench/ingress: sandnet's ingress proxy against nginx proxy_pass (keep-alive upstream), haproxy
# 2.6 in http mode and in tcp mode (bytes only: the least work a proxy can do), and against no
# proxy, in the same run. wrk -t2 -c64 for SECONDS on a 256-byte file served by nginx inside a
# sandbox; sandnet with ingress rules in force (block-all, allow the client range on the port).
# Median of RUNS runs, interleaved; with each proxy's CPU time per request.
#
#   host netns H: wrk, sandnetd (ingress :7081), nginx proxy :18080, haproxy :18081 (http), :18082 (tcp)
#        --veth-- sandbox sn-<id>: nginx :8080 (the upstream)
# usage: bench/ingress.sh SANDNETD [RUNS] [SECONDS]
#
# With SN_BENCH_B=OTHER-SANDNETD it compares two builds instead, on the same topology: RUNS
# pairs, the daemon restarted on the same state between builds (SANDNETD is A and runs first),
# sandnet's ingress alone; per pair the ratio of B's requests per second to A's, and each side's
# machine and proxy CPU per request.
set -u
sandnetd=$1
runs=${2:-5}
secs=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
H=bi-$$-h S=bi$$ BENCH_SB=bi$$
for c in wrk nginx haproxy; do command -v $c >/dev/null || { echo "$c is not installed"; exit 1; }; done
. "$here/lib.sh"
bench_init "$H"
bench_sandnetd "$sandnetd" "$H" --ingress-listen 127.0.0.1:7081 ${SN_BENCH_FLAGS:-}
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d "{\"id\":\"$S\",\"network\":{\"ingress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"from\":[\"127.0.0.0/8\"],\"ports\":[8080]}]}}}" \
	>"$tmp/sb.json" || { echo "create failed"; cat "$tmp/log"; exit 1; }
A=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"]["ipv4"])' "$tmp/sb.json")
mkdir -p "$tmp/www"
head -c 256 /dev/zero | tr '\0' 'x' >"$tmp/www/file"
# nginx_conf NAME WORKERS HTTP-BODY: an nginx configuration with everything it writes in $tmp
nginx_conf() {
	cat >"$tmp/$1.conf" <<CFG
worker_processes $2;
pid $tmp/$1.nginx.pid;
error_log $tmp/$1.err;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
	uwsgi_temp_path $tmp; scgi_temp_path $tmp;
	keepalive_requests 1000000;
$3
}
CFG
}
nginx_conf upstream 1 "	server { listen 8080; root $tmp/www; }"
nginx_conf proxy 2 "	upstream sb { server $A:8080; keepalive 64; }
	server {
		listen 127.0.0.1:18080;
		location / { proxy_pass http://sb; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
	}"
cat >"$tmp/haproxy.cfg" <<CFG
global
	maxconn 4000
	nbthread 2
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	http-reuse always
frontend f
	bind 127.0.0.1:18081
	default_backend b
backend b
	server s $A:8080
frontend t
	mode tcp
	bind 127.0.0.1:18082
	default_backend bt
backend bt
	mode tcp
	server s $A:8080
CFG
ip netns exec "sn-$S" nginx -c "$tmp/upstream.conf"
ip netns exec "$H" nginx -c "$tmp/proxy.conf"
ip netns exec "$H" haproxy -f "$tmp/haproxy.cfg" -D -p "$tmp/haproxy.pid"
sleep 0.5
cp "$tmp/upstream.nginx.pid" "$tmp/up.pid" 2>/dev/null
cp "$tmp/proxy.nginx.pid" "$tmp/px.pid" 2>/dev/null
HOST="8080-$S.sandnet.localhost"
for u in "http://127.0.0.1:7081/file" "http://127.0.0.1:18080/file" "http://127.0.0.1:18081/file" \
	"http://127.0.0.1:18082/file" "http://$A:8080/file"; do
	c=$(ip netns exec "$H" curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "$u")
	[ "$c" = 200 ] || { echo "$u: HTTP $c"; cat "$tmp/log"; exit 1; }
done
# run URL PID...: wrk against URL; prints "REQ/S/P99-MS/USER-US/SYS-US/ALL-US": the CPU time the
# processes PID... (the proxy) spent per request, and the machine's busy time per request. wrk prints "Requests/sec: N",
# "N requests in" and, with --latency, "99% X(us|ms|s)".
run() {
	_u=$1
	shift
	_c0=$(bench_cpu "$@") _b0=$(bench_busy)
	ip netns exec "$H" wrk -t2 -c64 -d"$secs"s --latency -H "Host: $HOST" "$_u" >"$tmp/wrk.out"
	_c1=$(bench_cpu "$@") _b1=$(bench_busy)
	awk -v c0="$_c0" -v c1="$_c1" -v busy=$((_b1 - _b0)) -v hz="$(getconf CLK_TCK)" '
		/Requests\/sec/ {r = $2}
		/ requests in / {n = $1}
		/^ *99%/ {v = $2; u = 1; if (v ~ /us$/) u = 0.001; else if (v ~ /ms$/) u = 1; else if (v ~ /s$/) u = 1000;
		          sub(/[a-z]+$/, "", v); p = v * u}
		END {split(c0, a, " "); split(c1, b, " "); f = n ? 1e6 / hz / n : 0
		     printf "%s/%.3f/%.1f/%.1f/%.1f", r, p, (b[1] - a[1]) * f, (b[2] - a[2]) * f, busy * f}' "$tmp/wrk.out"
}
if [ -n "${SN_BENCH_B:-}" ]; then
	# restart SANDNETD: the same state, so the sandbox and its nginx stay
	restart() {
		kill "$SN_PID"
		while kill -0 "$SN_PID" 2>/dev/null; do sleep 0.05; done
		bench_sandnetd "$1" "$H" --ingress-listen 127.0.0.1:7081 ${SN_BENCH_FLAGS:-}
		sleep 0.5
	}
	ab=""
	for r in $(seq "$runs"); do
		restart "$sandnetd"
		a=$(run http://127.0.0.1:7081/file "$SN_PID")
		restart "$SN_BENCH_B"
		ab="$ab $a,$(run http://127.0.0.1:7081/file "$SN_PID")"
	done
	python3 - "$ab" <<'PY'
import statistics as st, sys
pairs = [[[float(y) for y in side.split("/")] for side in p.split(",")] for p in sys.argv[1].split()]
a = [p[0] for p in pairs]; b = [p[1] for p in pairs]
print("sandnet ingress alone, A then B in %d pairs (wrk -t2 -c64): medians" % len(pairs))
for name, v in (("A", a), ("B", b)):
    print("  %s %9.0f req/s  p99 %6.3f ms  proxy CPU %5.1f us, machine %5.1f us per request"
          % (name, st.median(x[0] for x in v), st.median(x[1] for x in v),
             st.median(x[2] + x[3] for x in v), st.median(x[4] for x in v)))
print("  B / A req/s: median %.3f, B faster in %d of %d pairs (%s)"
      % (st.median(y[0] / x[0] for x, y in zip(a, b)), sum(y[0] > x[0] for x, y in zip(a, b)),
         len(pairs), " ".join("%.2f" % (y[0] / x[0]) for x, y in zip(a, b))))
PY
	exit 0
fi
sn="" ng="" hp="" tc="" di=""
for r in $(seq "$runs"); do
	sn="$sn $(run http://127.0.0.1:7081/file "$SN_PID")"
	ng="$ng $(run http://127.0.0.1:18080/file "$(cat "$tmp/px.pid")")"
	hp="$hp $(run http://127.0.0.1:18081/file "$(cat "$tmp/haproxy.pid")")"
	tc="$tc $(run http://127.0.0.1:18082/file "$(cat "$tmp/haproxy.pid")")"
	di="$di $(run "http://$A:8080/file")"
done
grep -c "ingress" "$tmp/log" | sed 's/^/log lines mentioning ingress: /'
python3 - "$sn" "$ng" "$hp" "$tc" "$di" <<'PY'
import statistics as st, sys
def r(s): return [[float(y) for y in x.split("/")] for x in s.split()]
rows = (("sandnet ingress (rules in force)", r(sys.argv[1])), ("nginx proxy_pass, keep-alive", r(sys.argv[2])),
        ("haproxy 2.6 mode http", r(sys.argv[3])), ("haproxy 2.6 mode tcp (bytes only)", r(sys.argv[4])),
        ("direct to the sandbox", r(sys.argv[5])))
print("wrk -t2 -c64, 256-byte file: requests/s, p99, CPU time per request of the proxy and of the machine (median of %d runs)" % len(rows[0][1]))
med = {}
for name, v in rows:
    med[name] = [st.median(x[i] for x in v) for i in range(5)]
    print("  %-34s %9.0f req/s  p99 %7.3f ms  proxy CPU %5.1f us user + %5.1f us sys, machine %5.1f us  (%s)"
          % (name, med[name][0], med[name][1], med[name][2], med[name][3], med[name][4],
             " ".join("%.0f" % x[0] for x in v)))
s, n, h = med[rows[0][0]], med[rows[1][0]], med[rows[2][0]]
t = med[rows[3][0]]
print("  sandnet / nginx: %.2fx req/s; p99 sandnet %.3f ms vs haproxy %.3f ms" % (s[0] / n[0], s[1], h[1]))
# the runs are interleaved, so each run's pair shares the machine's state of the moment, which
# drifts here within a run: the median of the per-run ratios
sv, nv, hv = rows[0][1], rows[1][1], rows[2][1]
print("  per-run pairs, median: sandnet / nginx %.2fx req/s; sandnet / haproxy p99 %.2f (%s)"
      % (st.median(a[0] / b[0] for a, b in zip(sv, nv)), st.median(a[1] / c[1] for a, c in zip(sv, hv)),
         " ".join("%.2f/%.2f" % (a[0] / b[0], a[1] / c[1]) for a, b, c in zip(sv, nv, hv))))
print("  a proxy that only forwards bytes (haproxy mode tcp) / nginx: %.2fx req/s" % (t[0] / n[0]))
PY
