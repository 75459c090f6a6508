#!/bin/sh
# bench/update: runs bench/update.py against a sandnetd of its own, in a host namespace of its
# own (the machine's network is not touched). usage: bench/update.sh SANDNETD [RUNS]
set -u
sandnetd=$1
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
H=bu-$$-h
tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/pid" ] && kill "$(cat "$tmp/pid")" 2>/dev/null
	sleep 0.2
	. "$here/../tests/lib/sandnetd.sh"
	sn_forget bu$$
	ip netns del "$H" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
ip netns add "$H" && ip -n "$H" link set lo up || exit 1
printf 'k team\n' >"$tmp/keys"
. "$here/../tests/lib/sandnetd.sh"
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/log" --log-level warn || exit 1
echo $SN_PID >"$tmp/pid"
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d '{"id":"bu'$$'"}' >/dev/null || exit 1
ip netns exec "$H" python3 "$here/update.py" 127.0.0.1:7080 k bu$$ "$runs"
