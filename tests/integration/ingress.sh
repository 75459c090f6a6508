#!/bin/sh
# The ingress proxy end to end: the real sandnetd, a sandbox running HTTP servers on several ports
# (tests/lib/httpsrv.py), and clients in namespaces of their own with their own addresses, one of
# them a trusted proxy.
#
#   c1 10.99.1.2 --veth--\
#   c2 10.99.2.2 --veth---- host netns H: sandnetd, ingress on :7081 ---- sandbox sn-<id>
#   c3 10.99.3.2 --veth--/  (--trusted-proxy 10.99.3.2/32, --control-port 9000)  ports 8080 8081 9000
# usage: ingress.sh SANDNETD SANDNET     (root; exit 77 when it cannot run here)
set -u
sandnetd=$1
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
for c in curl python3 nsenter; do command -v $c >/dev/null || { echo "no $c: skipped"; exit 77; }; done
. "$here/lib/sandnetd.sh"
H=ti-$$-h I=ig$$
tmp=$(mktemp -d)
cleanup() {
	for p in "$tmp"/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
	[ -n "${SN_PID:-}" ] && kill -9 "$SN_PID" 2>/dev/null
	sleep 0.2
	sn_forget $I
	for n in $H ti-$$-c1 ti-$$-c2 ti-$$-c3; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

set -e
ip netns add $H
ip -n $H link set lo up
for k in 1 2 3; do
	ip netns add ti-$$-c$k
	ip -n ti-$$-c$k link set lo up
	ip link add eth0 netns ti-$$-c$k type veth peer name c$k netns $H
	ip -n ti-$$-c$k addr add 10.99.$k.2/24 dev eth0
	ip -n ti-$$-c$k link set eth0 up
	ip -n $H addr add 10.99.$k.1/24 dev c$k
	ip -n $H link set c$k up
done
set +e
mkdir -p "$tmp/state"
echo "key-one team1" >"$tmp/keys"
FLAGS="--log-level debug --ingress-listen 0.0.0.0:7081 --trusted-proxy 10.99.3.2/32 \
	--control-port 9000 --ingress-header-timeout 3 --ingress-upstream-timeout 2 \
	--ingress-max-conns 10050 --workers 3"
# shellcheck disable=SC2086
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS || exit 1

api() { sn_api "$H" "key-one" "$@"; }
policy() {
	api PUT /v1/sandboxes/$I/network "$1"
	[ "$code" = 200 ] || bad "[$step] PUT $1: $code $body"
}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# get CLIENT PORT [curl args]: sets $code and $body for GET /echo through the ingress
get() {
	c=$1 port=$2; shift 2
	out=$(ip netns exec ti-$$-c$c curl -s -m 5 -H "Host: $port-$I.sandnet.localhost" "$@" \
		-w '\n%{http_code}' "http://10.99.$c.1:7081/echo")
	code=$(printf '%s' "$out" | tail -n 1)
	body=$(printf '%s' "$out" | sed '$d')
}
want() { # want CODE CLIENT PORT [curl args]
	w=$1; shift
	get "$@"
	if [ "$code" = "$w" ]; then ok; else bad "[$step] client c$1 port $2 ${3:+$*}: HTTP $code, want $w: $body"; fi
}
has() { case $body in *"$1"*) ok ;; *) bad "[$step] body lacks $1: $body" ;; esac; }
# ws_cut WHAT: the tunnel that "probe ws --hold" held in $tmp/ws was closed within 2 s of WHAT
ws_cut() {
	case "$(tail -n 1 "$tmp/ws")" in
	closed*)
		ms=$(tail -n 1 "$tmp/ws" | cut -d' ' -f2)
		[ "$ms" -lt 2000 ] && ok ||
			bad "[$step] the tunnel closed $ms ms after $1, want < 2000" ;;
	*) bad "[$step] a tunnel stayed open across $1: $(cat "$tmp/ws")" ;;
	esac
}
probe() { # probe CLIENT KIND ARGS...
	pc=$1 pk=$2; shift 2
	ip netns exec ti-$$-c$pc python3 "$here/lib/ingressprobe.py" "$pk" 10.99.$pc.1 7081 "$@"
}

api POST /v1/sandboxes "{\"id\":\"$I\"}"
[ "$code" = 201 ] || { echo "create: $code $body"; exit 1; }
A=$(printf '%s' "$body" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["address"]["ipv4"])')
ip netns exec sn-$I python3 "$here/lib/httpsrv.py" 8080,8081,9000 --ready "$tmp/srv.ready" \
	--lifetime 300 &
echo $! >"$tmp/srv.pid"
sn_wait_ready "$tmp/srv.ready" || exit 1
H8080="8080-$I.sandnet.localhost"

step=open; echo "-- $step"
want 200 1 8080; has "\"port\": 8080"; has "\"host\": \"$H8080\""
# the ingress reaches the sandbox from inside its namespace, at its own address: the server sees
# that address as the peer, and the host's connection tracking holds nothing of the hop
has "\"peer\": \"$A\""
if [ -r /proc/net/nf_conntrack ]; then
	n=$(ip netns exec $H grep -c "dst=$A .*dport=8080 " /proc/net/nf_conntrack)
	[ "$n" = 0 ] && ok || bad "[$step] $n entries of the ingress hop in the host's conntrack"
fi
want 200 2 8081
get 1 8080 -H "X-Forwarded-For: 1.2.3.4"
has "\"xff\": \"1.2.3.4, 10.99.1.2\""; has '"xfp": "http"'; has "\"xfh\": \"$H8080\""
out=$(ip netns exec ti-$$-c1 curl -s -m 5 -H "X-Sandnet-Sandbox: $I" -H "X-Sandnet-Port: 8081" \
	http://10.99.1.1:7081/echo)
case $out in *'"port": 8081'*) ok ;; *) bad "routing by headers: $out" ;; esac
# any case, a fully qualified name and a port in Host route the same
for h in "8081-$I.Sandnet.LOCALHOST" "8081-$I.sandnet.localhost." "8081-$I.sandnet.localhost.:7081"; do
	out=$(ip netns exec ti-$$-c1 curl -s -m 5 -H "Host: $h" http://10.99.1.1:7081/echo)
	case $out in *'"port": 8081'*) ok ;; *) bad "Host $h: $out" ;; esac
done
for h in 8080-nosuch.sandnet.localhost example.com 99999-$I.sandnet.localhost; do
	c=$(ip netns exec ti-$$-c1 curl -s -o /dev/null -m 5 -H "Host: $h" -w '%{http_code}' \
		http://10.99.1.1:7081/echo)
	[ "$c" = 404 ] && ok || bad "Host $h: HTTP $c, want 404"
done
# two Host fields (request smuggling material) are refused
c=$(ip netns exec ti-$$-c1 python3 -c '
import socket, sys
s = socket.create_connection(("10.99.1.1", 7081), timeout=5)
s.sendall(("GET /echo HTTP/1.1\r\nHost: 8080-%s.sandnet.localhost\r\nHost: 8081-%s.sandnet.localhost\r\n\r\n" % (sys.argv[1], sys.argv[1])).encode())
print(s.recv(100).split()[1].decode())' $I)
[ "$c" = 400 ] && ok || bad "two Host fields: HTTP $c, want 400"
# heads whose framing a server could read otherwise (request smuggling) are refused before they
# reach the sandbox; a version other than 1.x gets 505
R="Host: 8080-$I.sandnet.localhost\r\n"
P="POST /upload HTTP/1.1\r\n$R"
out=$(probe 1 seq --each "${P}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" \
	"${P}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" "${P}Content-Length : 5\r\n\r\nhello" \
	"${P}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" \
	"${P}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" \
	"${P}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" "${P}Transfer-Encoding: gzip\r\n\r\nhello" \
	"${P}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" "GET /echo HTTP/2.0\r\n$R\r\n")
[ "$out" = "400 400 400 400 400 400 400 400 505" ] && ok || bad "smuggling-shaped heads: $out"
# a 304 that gives its representation's length has no body: the next request on the same
# connection is answered
out=$(probe 1 seq "GET /304 HTTP/1.1\r\n$R\r\n" "GET /echo HTTP/1.1\r\n$R\r\n")
[ "$out" = "304 200" ] && ok || bad "304 with Content-Length, then a request on the same connection: $out"
# pipelined requests (three in one write, one with a body) are answered in order
out=$(probe 1 seq --pipeline "GET /echo HTTP/1.1\r\n$R\r\n" "${P}Content-Length: 5\r\n\r\nhello" \
	"GET /nothing HTTP/1.1\r\n$R\r\n")
[ "$out" = "200 200:5 404" ] && ok || bad "pipelined requests: $out"
# a response that ends when the sandbox closes ends the client's connection too
out=$(probe 1 seq --to-end "GET /eof HTTP/1.1\r\n$R\r\n")
[ "$out" = "200 until close" ] && ok || bad "a response until close: $out"
# an HTTP/1.0 request without keep-alive: the answer, then the end
out=$(probe 1 seq --to-end "GET /echo HTTP/1.0\r\n$R\r\n")
case $out in '200 {"port": 8080'*) ok ;; *) bad "an HTTP/1.0 request: $out" ;; esac
# the server closes a kept-alive connection after an answer: the next request of the client's
# connection goes on a new one
out=$(probe 1 seq --pause 0.3 "GET /bye HTTP/1.1\r\n$R\r\n" "GET /bye HTTP/1.1\r\n$R\r\n" \
	"GET /echo HTTP/1.1\r\n$R\r\n")
[ "$out" = "200 200 200" ] && ok || bad "requests after the server closed a kept-alive connection: $out"
# and the proxy lets go of a kept connection as soon as the server closes it (0.3 s after its
# answer), while the client's connection stays open: no socket of the daemon is left in
# CLOSE-WAIT (sampled for 2.5 s)
probe 1 seq --pause 4 "GET /bye-later HTTP/1.1\r\n$R\r\n" >"$tmp/bye" &
pb=$!
n=0
for t in 1 2 3 4 5; do
	sleep 0.5
	n=$((n + $(ip netns exec $H ss -Htn state close-wait "( dport = :8080 )" | wc -l)))
done
wait $pb
[ "$n" = 0 ] && [ "$(cat "$tmp/bye")" = 200 ] && ok ||
	bad "kept connections in CLOSE-WAIT after the server closed them: $n samples ($(cat "$tmp/bye"))"
# nor one on which the server sent something unasked (a 408 before closing)
out=$(probe 1 seq --pause 0.5 "GET /408-next HTTP/1.1\r\n$R\r\n" "GET /echo HTTP/1.1\r\n$R\r\n")
[ "$out" = "200 200" ] && ok || bad "a request after an unasked 408 on the kept connection: $out"
# the server closes a kept connection as the next request arrives: a GET goes again on a new
# connection, a POST (not idempotent) gets a 502
out=$(probe 1 seq "GET /drop-next HTTP/1.1\r\n$R\r\n" "GET /echo HTTP/1.1\r\n$R\r\n" \
	"GET /drop-next HTTP/1.1\r\n$R\r\n" "${P}Content-Length: 5\r\n\r\nhello")
[ "$out" = "200 200 200 502" ] && ok || bad "a kept connection closed as a request arrives: $out"
# a client that sends its request and shuts its side at once (one segment: corked) gets the
# answer, then the end
out=$(probe 1 seq --to-end --shut "GET /echo HTTP/1.1\r\n$R\r\n")
case $out in '200 {"port": 8080'*) ok ;; *) bad "a request with the client side shut at once: $out" ;; esac
# hop-by-hop fields stop at the proxy (RFC 9110 7.6.1): Connection, the fields it names, and
# Keep-Alive, Proxy-Connection, TE; the proxy sends its own Connection where its hop needs one
hdrs() { # hdrs CURL-ARGS...: the fields the server saw, one "name: value" a line
	ip netns exec ti-$$-c1 curl -s -m 5 -H "Host: 8080-$I.sandnet.localhost" "$@" \
		http://10.99.1.1:7081/headers |
		python3 -c 'import json,sys; [print("%s: %s" % (k.lower(), v)) for k, v in json.load(sys.stdin)]'
}
out=$(hdrs -H "Connection: keep-alive, X-Hop,, x-other" -H "X-Hop: 1" -H "X-Other: 2" \
	-H "Keep-Alive: timeout=5" -H "TE: trailers" -H "Proxy-Connection: keep-alive" -H "X-Stay: 3")
case $out in *x-stay:\ 3*) ok ;; *) bad "an end-to-end field was dropped: $out" ;; esac
printf '%s\n' "$out" | grep -Eq '^(connection|x-hop|x-other|keep-alive|te|proxy-connection):' &&
	bad "hop-by-hop fields reached the sandbox: $out" || ok
out=$(hdrs -H "Connection: close")
printf '%s\n' "$out" | grep -qx 'connection: close' && ok || bad "Connection: close did not go on: $out"
out=$(hdrs -0 -H "Connection: keep-alive")
printf '%s\n' "$out" | grep -qx 'connection: keep-alive' && ok ||
	bad "an HTTP/1.0 request's keep-alive did not go on: $out"
out=$(probe 1 seq "GET /echo HTTP/1.1\r\n${R}Connection: $(printf 'o%d,' $(seq 33))\r\n\r\n")
[ "$out" = 400 ] && ok || bad "a Connection field naming 33 options: $out"
# an absolute-form target names the host over Host and goes on in origin form, with a Host made
# from it (RFC 9112 3.2.2); other schemes, userinfo and an empty host are refused
D="$I.sandnet.localhost"
out=$(probe 1 seq --to-end "GET HTTP://8081-$D/echo?x=1 HTTP/1.1\r\n${R}Connection: close\r\n\r\n")
case $out in *'"port": 8081, "host": "8081-'$D'"'*'"xfh": "8081-'$D'"'*'"path": "/echo?x=1"'*) ok ;;
*) bad "an absolute-form target: $out" ;; esac
out=$(probe 1 seq --each "GET ftp://8080-$D/echo HTTP/1.1\r\n$R\r\n" \
	"GET http://u@8080-$D/echo HTTP/1.1\r\n$R\r\n" "GET http:///echo HTTP/1.1\r\n$R\r\n" \
	"GET http://8080-$D HTTP/1.1\r\n$R\r\n")
[ "$out" = "400 400 400 200" ] && ok || bad "absolute-form targets refused (and one without a path): $out"
# one client connection that asks other ports, a denied one among them, and comes back: each
# request reaches its own port (the upstream connection changes with the port)
H81="Host: 8081-$D\r\n" H82="Host: 8082-$D\r\n"
policy '{"ingress":{"rules":[{"action":"deny","ports":[8082]}]}}'
out=$(probe 1 seq --ports "GET /echo HTTP/1.1\r\n$R\r\n" "GET /echo HTTP/1.1\r\n$H81\r\n" \
	"GET /echo HTTP/1.1\r\n$R\r\n" "GET /echo HTTP/1.1\r\n$H82\r\n")
[ "$out" = "200@8080 200@8081 200@8080 403" ] && ok || bad "ports in turn on one connection: $out"
# the proxy's own answer to a HEAD request is a head alone (RFC 9110 9.3.2)
out=$(probe 1 seq --to-end "HEAD /echo HTTP/1.1\r\n$H82\r\n")
[ "$out" = "403 " ] && ok || bad "the proxy's answer to HEAD has a body: $out"
policy '{}'
# X-Forwarded-Host carries the whole Host, however long (routing by the X-Sandnet headers)
lh=$(head -c 1000 /dev/zero | tr '\0' 'h').example
out=$(ip netns exec ti-$$-c1 curl -s -m 5 -H "X-Sandnet-Sandbox: $I" -H "X-Sandnet-Port: 8080" \
	-H "Host: $lh" http://10.99.1.1:7081/echo)
case $out in *'"xfh": "'$lh'"'*) ok ;; *) bad "a 1,000-byte Host in X-Forwarded-Host: $out" ;; esac
out=$(probe 1 seq --to-end "CONNECT 8080-$D:80 HTTP/1.1\r\n$R\r\n")
case $out in '501 {"error":{"code":"not_implemented"'*) ok ;; *) bad "CONNECT through the ingress: $out" ;; esac
out=$(probe 1 seq --to-end "GET http://8080-$D?q HTTP/1.1\r\n${R}Connection: close\r\n\r\n")
case $out in *'"path": "/?q"'*) ok ;; *) bad "an absolute-form target with a query and no path: $out" ;; esac
want 502 1 8099
# a head over 16 KiB: 431, named; an upstream that does not answer within
# --ingress-upstream-timeout (2 s): 504, named
big=$(head -c 17000 /dev/zero | tr '\0' a)
want 431 1 8080 -H "X-Big: $big"; has '"code":"header_too_large"'
out=$(ip netns exec ti-$$-c1 curl -s -m 8 -H "Host: 8080-$I.sandnet.localhost" \
	-w ' %{http_code} %{time_total}' http://10.99.1.1:7081/slow)
case $out in
*'"code":"gateway_timeout"'*' 504 '[2-4].*) ok ;;
*) bad "[$step] an upstream silent past the timeout: $out" ;;
esac

step=ports; echo "-- $step"
policy '{"ingress":{"rules":[{"action":"deny","ports":[8081]}]}}'
want 200 1 8080; want 403 1 8081
policy '{"ingress":{"mode":"block-all","rules":[{"action":"allow","ports":[8080]}]}}'
want 200 1 8080; want 403 1 8081; want 200 1 9000
has '"port": 9000'

step=clients; echo "-- $step"
policy '{"ingress":{"rules":[{"action":"deny","from":["10.99.2.2"]}]}}'
want 200 1 8080; want 403 2 8080
# an IPv4 client that a trusted proxy writes as IPv6 (::ffff:a.b.c.d) is decided as IPv4
want 403 3 8080 -H "X-Forwarded-For: ::ffff:10.99.2.2"
want 200 3 8080 -H "X-Forwarded-For: ::ffff:10.99.1.2"
policy '{"ingress":{"mode":"block-all","rules":[{"action":"allow","from":["10.99.1.0/24"]}]}}'
want 200 1 8080; want 403 2 8080
# X-Forwarded-For counts only from a trusted proxy
want 403 2 8080 -H "X-Forwarded-For: 10.99.1.2"
want 200 3 8080 -H "X-Forwarded-For: 10.99.2.2, 10.99.1.2"
want 403 3 8080 -H "X-Forwarded-For: 10.99.1.2, 10.99.2.2"
want 200 3 8080 -H "X-Forwarded-For: 10.99.1.2" -H "X-Forwarded-For: 10.99.3.2"
want 403 3 8080 -H "X-Forwarded-For: garbage"
want 403 3 8080 -H "X-Forwarded-For: 10.99.1.2,,"
want 403 3 8080

step=deny-all; echo "-- $step"
policy '{"ingress":{"mode":"block-all"}}'
want 403 1 8080; has '"code":"forbidden"'
want 403 1 8080 -H "Accept: text/html,application/xhtml+xml"; has '<!DOCTYPE html>'
want 200 1 9000
policy '{}'
want 200 1 8080; want 200 2 8081

step=mask; echo "-- $step"
policy '{"ingress":{"mask_request_host":"localhost:{port}"}}'
get 1 8081; has '"host": "localhost:8081"'; has "\"xfh\": \"8081-$I.sandnet.localhost\""
policy '{"ingress":{"mask_request_host":"internal.example"}}'
get 1 8080; has '"host": "internal.example"'
api PUT /sandboxes/$I/network '{"maskRequestHost":"localhost:${PORT}"}'
[ "$code" = 204 ] && ok || bad "E2B PUT: $code $body"
get 1 8080; has '"host": "localhost:8080"'

step=pause; echo "-- $step"
policy '{"ingress":{"rules":[{"action":"deny","ports":[8081]}]}}'
# a pause cuts the sandbox's network: an open tunnel closes (the hop to the sandbox stays inside
# its namespace, where the host's rules do not drop it: the proxy cuts it)
probe 1 ws "$H8080" --hold 8 >"$tmp/ws" &
wp=$!
i=0; until grep -q echo "$tmp/ws" || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
api POST /v1/sandboxes/$I/pause; [ "$code" = 200 ] && ok || bad "pause: $code"
wait $wp
ws_cut "a pause"
want 503 1 8080
api POST /v1/sandboxes/$I/resume; [ "$code" = 200 ] && ok || bad "resume: $code"
want 200 1 8080; want 403 1 8081

step=restart; echo "-- $step"
kill -9 "$SN_PID"; sleep 0.3
# shellcheck disable=SC2086
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS || exit 1
want 200 1 8080; want 403 1 8081

step=keepalive; echo "-- $step"
policy '{}'
mkdir "$tmp/steps"
probe 1 keepalive "$H8080" 3 --steps "$tmp/steps" >"$tmp/ka" &
kp=$!
touch "$tmp/steps/step0"
i=0; until [ -e "$tmp/steps/done0" ] || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
policy '{"ingress":{"rules":[{"action":"deny","ports":[8080]}]}}'
touch "$tmp/steps/step1"
wait $kp
[ "$(cat "$tmp/ka")" = "200,403" ] && ok || bad "keep-alive across an update: $(cat "$tmp/ka")"
policy '{}'
out=$(probe 1 keepalive "$H8080" 3)
[ "$out" = "200,200,200" ] && ok || bad "keep-alive: $out"
# one upstream connection served all three
ip netns exec ti-$$-c1 python3 - "$H8080" <<'PY' >"$tmp/conns"
import http.client, json, sys
c = http.client.HTTPConnection("10.99.1.1", 7081, timeout=5)
ids = set()
for _ in range(3):
    c.request("GET", "/echo", headers={"Host": sys.argv[1]})
    ids.add(json.loads(c.getresponse().read())["conn"])
print(len(ids))
PY
[ "$(cat "$tmp/conns")" = 1 ] && ok || bad "upstream connection not kept: $(cat "$tmp/conns") connections"

step=websocket; echo "-- $step"
out=$(probe 1 ws "$H8080"); [ "$out" = echo ] && ok || bad "websocket: $out"
# as some browsers ask: "Connection: keep-alive, Upgrade" (the proxy sends its own Connection)
out=$(probe 1 ws "$H8080" --conn "keep-alive, Upgrade"); [ "$out" = echo ] && ok ||
	bad "websocket asked with Connection: keep-alive, Upgrade: $out"
# the server ends the tunnel: its end reaches the client
out=$(probe 1 ws "$H8080" --close); [ "$out" = "echo ended" ] && ok || bad "websocket closed by the server: $out"
out=$(probe 1 ws "$H8080" --close --shut); [ "$out" = "echo ended" ] && ok || bad "websocket closed by both: $out"
probe 1 ws "$H8080" --hold 8 >"$tmp/ws" &
wp=$!
i=0; until grep -q echo "$tmp/ws" || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
policy '{"ingress":{"rules":[{"action":"deny","ports":[8080]}]}}'
wait $wp
case "$(tail -n 1 "$tmp/ws")" in closed*) ok ;; *) bad "tunnel to a denied port stayed open: $(cat "$tmp/ws")" ;; esac
policy '{}'

step=upload; echo "-- $step"
hwm0=$(awk '/VmHWM/ {print $2}' /proc/$SN_PID/status)
out=$(head -c 100000000 /dev/zero | ip netns exec ti-$$-c1 curl -s -m 60 -X POST -H "Host: $H8080" \
	-H "Transfer-Encoding: chunked" -T - http://10.99.1.1:7081/upload)
case $out in *'"bytes": 100000000'*) ok ;; *) bad "100 MB chunked upload: $out" ;; esac
hwm1=$(awk '/VmHWM/ {print $2}' /proc/$SN_PID/status)
echo "100 MB chunked upload: sandnetd peak RSS $hwm0 -> $hwm1 KiB"
if grep -qa __asan_init "$sandnetd"; then
	echo "(sanitizer build: the memory bound is not checked)"
elif [ $((hwm1 - hwm0)) -le 4096 ]; then ok; else bad "upload grew sandnetd by $((hwm1 - hwm0)) KiB"; fi
# Expect: 100-continue: the server's 100 reaches the client (curl waits for it up to 30 s, past -m 10),
# then the body goes, then the answer
out=$(head -c 300000 /dev/zero | ip netns exec ti-$$-c1 curl -s -m 10 --expect100-timeout 30 -X POST \
	-H "Host: $H8080" -H "Expect: 100-continue" --data-binary @- -w " %{http_code}" http://10.99.1.1:7081/upload)
case $out in *'"bytes": 300000} 200') ok ;; *) bad "upload after 100-continue: $out" ;; esac
# a 100 MB chunked download, the first 40 MB of it to a client reading at 20 MB/s: the proxy
# reads from the sandbox only as fast as the client takes
out=$(ip netns exec ti-$$-c1 curl -s -m 60 -o /dev/null -w '%{http_code} %{size_download}' \
	--limit-rate 20M -H "Host: $H8080" "http://10.99.1.1:7081/big?40000000")
[ "$out" = "200 40000000" ] && ok || bad "40 MB download at 20 MB/s: $out"
out=$(ip netns exec ti-$$-c1 curl -s -m 60 -o /dev/null -w '%{http_code} %{size_download}' \
	-H "Host: $H8080" "http://10.99.1.1:7081/big?100000000")
[ "$out" = "200 100000000" ] && ok || bad "100 MB download: $out"
hwm2=$(awk '/VmHWM/ {print $2}' /proc/$SN_PID/status)
echo "downloads: sandnetd peak RSS $hwm1 -> $hwm2 KiB"
if grep -qa __asan_init "$sandnetd"; then
	:
elif [ $((hwm2 - hwm1)) -le 4096 ]; then ok; else bad "downloads grew sandnetd by $((hwm2 - hwm1)) KiB"; fi

step=slowloris; echo "-- $step"
out=$(probe 1 slowloris "$H8080")
ms=${out#cut }
case $out in cut*) if [ "$ms" -ge 2500 ] && [ "$ms" -le 5500 ]; then ok; else bad "slow loris cut after $ms ms"; fi ;;
*) bad "slow loris: $out" ;; esac

step=idle; echo "-- $step"
rss0=$(awk '/VmRSS/ {print $2}' /proc/$SN_PID/status)
probe 1 idle 10000 3 >"$tmp/idle" &
ip=$!
i=0; until grep -q open "$tmp/idle" || [ $i -gt 600 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
rss1=$(awk '/VmRSS/ {print $2}' /proc/$SN_PID/status)
# the three ingress workers serve a third each (the kernel's reuseport hash alone would leave them
# tens of connections apart): their epoll sets, the three largest, hold within a few of each other
sets=$(awk '/^tfd:/ {n[FILENAME]++} END {for (f in n) print n[f]}' /proc/$SN_PID/fdinfo/* |
	sort -n | tail -3)
echo "connections per ingress worker (epoll set sizes): $(echo $sets)"
echo "$sets" | awk 'NR == 1 {lo = $1} END {hi = $1; exit !(NR == 3 && lo >= 3000 && hi - lo <= 8)}' &&
	ok || bad "ingress workers unevenly loaded: $(echo $sets)"
# the three ingress workers, and they alone, run as SCHED_BATCH (3): woken, they do not preempt
batch=$(awk '$41 == 3' /proc/$SN_PID/task/*/stat | wc -l)
[ "$batch" -eq 3 ] && ok || bad "$batch threads of sandnetd run as SCHED_BATCH, want the 3 ingress workers"
wait $ip
grep -q "held 10000" "$tmp/idle" && ok || bad "10,000 idle connections: $(cat "$tmp/idle")"
echo "10,000 idle ingress connections: sandnetd RSS $rss0 -> $rss1 KiB (+$((rss1 - rss0)) KiB)"
# the bound stated in docs/DAEMON.md: 1 KiB of daemon memory per idle connection
if grep -qa __asan_init "$sandnetd"; then
	echo "(sanitizer build: the memory bound is not checked)"
elif [ $((rss1 - rss0)) -le 10000 ]; then ok; else bad "10,000 idle connections cost $((rss1 - rss0)) KiB"; fi
want 200 1 8080

step=denials; echo "-- $step"
api GET "/v1/sandboxes/$I/network/denials"
case $body in *'"source":"ingress","protocol":"tcp","address":"10.99.1.2","port":8081,"name":null,"reason":"an ingress rule denies it","rule":0'*) ok ;;
*) bad "ingress denial missing: $body" ;; esac

step=fdlimit; echo "-- $step"
# out of descriptors, the workers stop watching their listeners for a while instead of waking on
# them again and again, and accept once descriptors are free
kill -9 "$SN_PID"; sleep 0.3
sn_lowfd "$sandnetd" "$tmp/lowfd" 128
# shellcheck disable=SC2086
sn_start "$tmp/lowfd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS || exit 1
probe 1 idle 300 6 >"$tmp/fd" &
ip=$!
i=0; until grep -q open "$tmp/fd" || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
ticks=$(sn_spin "$SN_PID" 1)
echo "300 connections against 128 descriptors: sandnetd used $ticks ticks of CPU in 1 s"
[ "$ticks" -le 20 ] && ok || bad "out of descriptors, sandnetd spun: $ticks ticks in 1 s"
grep -q "ingress: cannot accept connections (the last descriptors are kept for the API, the store and exec)" \
	"$tmp/sandnetd.log" && ok ||
	bad "no warning about the descriptor limit"
# the proxies leave the last descriptors to the rest of the daemon: its API still takes a policy
# at once, while the connections are held
for p in '{"ingress":{"rules":[{"action":"deny","ports":[8081]}]}}' '{}'; do
	api PUT /v1/sandboxes/$I/network "$p" -m 1
	[ "$code" = 200 ] && ok || bad "[$step] PUT while the ingress holds 300 connections: HTTP $code"
done
grep -q "held" "$tmp/fd" && bad "[$step] the connections were let go too soon" || ok
wait $ip
want 200 1 8080

step=maxconns; echo "-- $step"
# past --ingress-max-conns the workers stop accepting (the rest of the daemon keeps its
# descriptors): a client waits in the kernel's queue, and is served once a connection closes
kill -9 "$SN_PID"; sleep 0.3
# shellcheck disable=SC2086
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS --ingress-max-conns 20 ||
	exit 1
probe 1 idle 20 3 >"$tmp/mc" &
ip=$!
i=0; until grep -q open "$tmp/mc" || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
t0=$(date +%s%N)
want 000 2 8080 -m 1
get 2 8080 -m 8 >/dev/null
t1=$(date +%s%N)
wait $ip
grep -q "held 20" "$tmp/mc" && ok || bad "20 idle connections with --ingress-max-conns 20: $(cat "$tmp/mc")"
[ "$code" = 200 ] && ok || bad "a client queued past the limit: HTTP $code, want 200 once slots free"
echo "a client past --ingress-max-conns 20 was served after $(((t1 - t0) / 1000000)) ms"
[ $(((t1 - t0) / 1000000)) -ge 1500 ] && ok || bad "a client past the limit was served at once"
grep -q "ingress: 20 connections open, the most --ingress-max-conns allows" "$tmp/sandnetd.log" && ok ||
	bad "no warning about --ingress-max-conns"
want 200 1 8080

step=perclient; echo "-- $step"
# --ingress-max-conns-per-client: past it a client's new connections are reset at once; other
# clients, and a trusted proxy (which speaks for many), are not held to it
kill -9 "$SN_PID"; sleep 0.3
# shellcheck disable=SC2086
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS \
	--ingress-max-conns-per-client 5 || exit 1
probe 1 idle 5 3 >"$tmp/pc1" &
ip1=$!
probe 3 idle 8 3 >"$tmp/pc3" &
ip3=$!
i=0; until { grep -q open "$tmp/pc1" && grep -q open "$tmp/pc3"; } || [ $i -gt 100 ]; do
	sleep 0.1; i=$((i + 1)); done
want 000 1 8080 -m 2
want 200 2 8080
want 200 3 8080
wait $ip1 $ip3
grep -q "held 5" "$tmp/pc1" && ok || bad "5 idle connections of c1: $(cat "$tmp/pc1")"
grep -q "held 8" "$tmp/pc3" && ok || bad "8 idle connections of the trusted proxy: $(cat "$tmp/pc3")"
want 200 1 8080
grep -q "ingress: 10.99.1.2 has 5 connections open, the most --ingress-max-conns-per-client allows: refused" \
	"$tmp/sandnetd.log" && ok || bad "no warning about --ingress-max-conns-per-client"
# over IPv6 (--ingress-listen [::]:PORT) a client is its /64: c1's other address in the same /64
# counts with the first, c2's /64 does not
for k in 1 2; do
	ip -n ti-$$-c$k addr add fd99:$k::2/64 dev eth0 nodad
	ip -n $H addr add fd99:$k::1/64 dev c$k nodad
done
ip -n ti-$$-c1 addr add fd99:1::3/64 dev eth0 nodad
kill -9 "$SN_PID"; sleep 0.3
# shellcheck disable=SC2086
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" $FLAGS \
	--ingress-listen "[::]:7081" --ingress-max-conns-per-client 2 || exit 1
get6() { # get6 CLIENT [curl args]: sets $code for GET /echo on port 8080 through the ingress over IPv6
	c=$1; shift
	code=$(ip netns exec ti-$$-c$c curl -s -m 2 -o /dev/null -w '%{http_code}' \
		-H "Host: $H8080" "$@" "http://[fd99:$c::1]:7081/echo")
}
ip netns exec ti-$$-c1 python3 "$here/lib/ingressprobe.py" idle fd99:1::1 7081 2 3 \
	--source fd99:1::2 >"$tmp/pc6" &
ip1=$!
i=0; until grep -q open "$tmp/pc6" || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
get6 1 --interface fd99:1::3
[ "$code" = 000 ] && ok || bad "[$step] c1's other address in its /64 past the limit: HTTP $code, want 000"
get6 2
[ "$code" = 200 ] && ok || bad "[$step] c2 over IPv6 while c1's /64 is at its limit: HTTP $code"
wait $ip1
grep -q "held 2" "$tmp/pc6" && ok || bad "2 idle IPv6 connections of c1: $(cat "$tmp/pc6")"
get6 1 --interface fd99:1::3
[ "$code" = 200 ] && ok || bad "[$step] c1's other address once its /64's connections closed: HTTP $code"

step=cpus; echo "-- $step"
# without --workers, a pool has a worker per core the daemon may run on (its affinity: a
# container's cpuset, taskset), not one per core of the host
kill -9 "$SN_PID"; sleep 0.3
printf '#!/bin/sh\nexec taskset -c 0 "%s" "$@"\n' "$sandnetd" >"$tmp/onecpu" && chmod +x "$tmp/onecpu"
# shellcheck disable=SC2086
sn_start "$tmp/onecpu" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" ${FLAGS%--workers 3} || exit 1
batch=$(awk '$41 == 3' /proc/$SN_PID/task/*/stat | wc -l)
[ "$batch" -eq 1 ] && ok || bad "bound to one core, sandnetd runs $batch ingress workers, want 1"
want 200 1 8080

step=delete; echo "-- $step"
# deleting the sandbox cuts the hop to it: an open tunnel closes at once (the server, started
# outside the sandbox's cgroup, lives on in its namespace; without the cut the tunnel closed about
# 5 s later)
probe 1 ws "$H8080" --hold 8 >"$tmp/ws" &
wp=$!
i=0; until grep -q echo "$tmp/ws" || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
api DELETE /v1/sandboxes/$I; [ "$code" = 204 ] && ok || bad "delete: $code"
wait $wp
ws_cut "the sandbox's deletion"
want 404 1 8080
# a client connection kept across the deletion reaches a sandbox made again under the same id:
# another sandbox, not the one it knew
api POST /v1/sandboxes "{\"id\":\"$I\"}"; [ "$code" = 201 ] && ok || bad "create again: $code"
ip netns exec sn-$I python3 "$here/lib/httpsrv.py" 8080 --ready "$tmp/srv2.ready" --lifetime 60 &
echo $! >"$tmp/srv2.pid"
sn_wait_ready "$tmp/srv2.ready" || bad "a server in the sandbox made again"
mkdir "$tmp/steps2"
probe 1 keepalive "$H8080" 2 --steps "$tmp/steps2" >"$tmp/ka2" &
kp=$!
touch "$tmp/steps2/step0"
i=0; until [ -e "$tmp/steps2/done0" ] || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
api DELETE /v1/sandboxes/$I; [ "$code" = 204 ] && ok || bad "delete again: $code"
deny8080='{"ingress":{"rules":[{"action":"deny","ports":[8080]}]}}'
api POST /v1/sandboxes "{\"id\":\"$I\",\"network\":$deny8080}"
[ "$code" = 201 ] && ok || bad "create a third time: $code"
touch "$tmp/steps2/step1"
wait $kp
[ "$(cat "$tmp/ka2")" = "200,403" ] && ok ||
	bad "[$step] a kept connection across delete and create: $(cat "$tmp/ka2"), want 200,403"
api DELETE /v1/sandboxes/$I
# a sanitizer build reports here what it found in the daemon (UBSan goes on after a report)
if grep -q "runtime error\|AddressSanitizer" "$tmp/sandnetd.log"; then
	bad "sanitizer report in sandnetd's log"
	grep -A20 "runtime error\|Sanitizer" "$tmp/sandnetd.log" | head -40
else
	ok
fi
echo "ingress: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "--- sandnetd log (tail)"; tail -n 30 "$tmp/sandnetd.log"; }
[ $fail -eq 0 ]
