#!/bin/sh
# bench/create: bench/create.py against a sandnetd of its own, in a host namespace of its own.
# usage: bench/create.sh SANDNETD [N]
set -u
sandnetd=$1
n=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
H=bc-$$-h
. "$here/lib.sh"
# whatever a failed run left
bench_forget_more() { sn_forget $(ip netns list | awk '/^sn-bc[0-9]/ {sub(/^sn-/, "", $1); print $1}'); }
bench_init "$H"
bench_sandnetd "$sandnetd" "$H"
ip netns exec "$H" python3 "$here/create.py" 127.0.0.1:7080 k "$SN_PID" "$n"
