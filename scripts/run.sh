#!/bin/sh
# make run: starts sandnetd with its state in ./var, prints the API key and example commands, and
# stays in the foreground until Ctrl-C (the sandboxes and their rules stay; see README).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
state=$top/var
mkdir -p "$state"
"$top/$build/sandnetd" --state-dir "$state" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' INT TERM
i=0
until curl -s -o /dev/null http://127.0.0.1:7080/healthz; do
	i=$((i + 1))
	if [ $i -gt 50 ] || ! kill -0 $pid 2>/dev/null; then
		echo "sandnetd did not start" >&2
		exit 1
	fi
	sleep 0.1
done
key=$(cut -d' ' -f1 "$state/api-key")
cat <<EOT

sandnetd is listening on http://127.0.0.1:7080 (state in $state)
API key: $key

Try:
  curl -s -H 'X-API-Key: $key' -X POST http://127.0.0.1:7080/v1/sandboxes -d '{"id":"demo"}'
  curl -s -H 'X-API-Key: $key' -X PUT http://127.0.0.1:7080/v1/sandboxes/demo/network \\
       -d '{"allowOut":["1.1.1.1"],"denyOut":["0.0.0.0/0"]}'
  ip netns exec sn-demo curl -sS -m 2 http://10.200.0.1/   # refused at once: the host is guarded

Ctrl-C stops sandnetd; sandboxes and their rules stay in force until it starts again.
EOT
wait $pid
