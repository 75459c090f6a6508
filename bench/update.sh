#!/bin/sh
# bench/update: runs bench/update.py against a sandnetd of its own, in a host namespace of its
# own (the machine's network is not touched). usage: bench/update.sh SANDNETD [RUNS]
set -u
sandnetd=$1
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
H=bu-$$-h BENCH_SB=bu$$
. "$here/lib.sh"
bench_init "$H"
bench_sandnetd "$sandnetd" "$H"
ip netns exec "$H" curl -sf -H 'X-API-Key: k' -X POST http://127.0.0.1:7080/v1/sandboxes \
	-d '{"id":"bu'$$'"}' >/dev/null || exit 1
ip netns exec "$H" python3 "$here/update.py" 127.0.0.1:7080 k bu$$ "$runs"
