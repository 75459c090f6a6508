#!/bin/sh
# Flip test: a sender in a sandbox stamps UDP datagrams with their send time while the policy flips
# between allow and deny N times (default 1000); the receiver in the world must see no datagram
# sent after a deny PUT returned and before the next allow PUT began.
#
#   sn-<id> (sandnetd's)  --veth--  host netns H (sandnetd)  --veth--  world W 198.51.100.1 (receiver)
# usage: flip.sh SANDNETD [N]     (root; exit 77 when it cannot run here)
set -u
sandnetd=$1
flips=${2:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
for c in python3 nsenter curl; do command -v $c >/dev/null || { echo "no $c: skipped"; exit 77; }; done
H=tf-$$-h W=tf-$$-w F=f$$x
tmp=$(mktemp -d)
cleanup() {
	for p in "$tmp"/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
	sleep 0.2
	sn_forget "$F"
	for n in $H $W; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
. "$here/lib/sandnetd.sh"
set -e
for n in $H $W; do ip netns add "$n"; ip -n "$n" link set lo up; done
sn_world "$H" "$W" 192.0.2.2/24
ip -n "$H" route add 198.51.100.0/24 via 192.0.2.2
ip -n "$W" addr add 198.51.100.1/32 dev lo
set +e
printf 'k team\n' >"$tmp/keys"
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/sandnetd.log" || exit 1
echo $SN_PID >"$tmp/sandnetd.pid"
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d "{\"id\":\"$F\"}" >/dev/null || { echo "create failed"; exit 1; }

# the flips bound the run: about 9 ms each, plus margin
secs=$(( flips / 100 + 6 ))
ip netns exec "$W" python3 "$here/lib/flip.py" recv 198.51.100.1 9999 "$secs" "$tmp/stamps" &
echo $! >"$tmp/recv.pid"
sleep 0.3
ip netns exec "sn-$F" python3 "$here/lib/flip.py" send 198.51.100.1 9999 "$((secs - 2))" \
	"$tmp/sendlog" >"$tmp/sent" &
echo $! >"$tmp/send.pid"
sleep 0.3
start=$(date +%s.%N)
ip netns exec "$H" python3 "$here/lib/flip.py" flip 127.0.0.1:7080 k "$F" "$flips" "$tmp/windows" ||
	{ echo "FAIL: flipping"; tail "$tmp/sandnetd.log"; exit 1; }
took=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
wait "$(cat "$tmp/send.pid")"; wait "$(cat "$tmp/recv.pid")"
rm -f "$tmp/send.pid" "$tmp/recv.pid"
set -- $(python3 "$here/lib/flip.py" check "$tmp/windows" "$tmp/stamps" "$tmp/sendlog")
leaked=$1 received=$2 windows=$3 inside=$4
echo "flip: $windows flips in ${took}s; $(cat "$tmp/sent") datagrams sent, $received received;" \
	"$inside sent inside a deny window, $leaked of them arrived"
# datagrams were sent inside the deny windows (the test can fail), and none of them arrived
if [ "$leaked" -eq 0 ] && [ "$inside" -gt "$flips" ] && [ "$received" -gt 1000 ] &&
	[ "$windows" -eq "$flips" ]; then
	echo "flip: 1 passed, 0 failed"
else
	echo "flip: 0 passed, 1 failed"; exit 1
fi
