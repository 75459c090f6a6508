#!/bin/sh
# bench/create: bench/create.py against a sandnetd of its own, in a host namespace of its own.
# usage: bench/create.sh SANDNETD [N]
set -u
sandnetd=$1
n=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
H=bc-$$-h
tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/pid" ] && kill "$(cat "$tmp/pid")" 2>/dev/null
	sleep 0.3
	# whatever a failed run left
	. "$here/../tests/lib/sandnetd.sh"
	sn_forget $(ip netns list | awk '/^sn-bc[0-9]/ {sub(/^sn-/, "", $1); print $1}')
	ip netns del "$H" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
ip netns add "$H" && ip -n "$H" link set lo up || exit 1
printf 'k team\n' >"$tmp/keys"
. "$here/../tests/lib/sandnetd.sh"
sn_start "$sandnetd" "$H" "$tmp/state" "$tmp/keys" "$tmp/log" --log-level warn || exit 1
echo $SN_PID >"$tmp/pid"
ip netns exec "$H" python3 "$here/create.py" 127.0.0.1:7080 k "$(cat "$tmp/pid")" "$n"
