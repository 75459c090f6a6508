# Shell helpers of the benchmarks: each runs a sandnetd of its own in namespaces of its own and
# removes everything it made when it ends, however it ends. Source it after setting `here` (the
# bench/ directory); it sources tests/lib/sandnetd.sh. Globals: tmp (a directory of the run; every
# $tmp/*.pid is killed at the end), BENCH_SB (sandbox ids to forget at the end).

. "$here/../tests/lib/sandnetd.sh"

# bench_init NS...: the run's directory, the namespaces (loopback up), the cleanup trap.
bench_init() {
	tmp=$(mktemp -d)
	BENCH_NS="$*"
	trap bench_cleanup EXIT INT TERM
	for _n in "$@"; do
		ip netns add "$_n" && ip -n "$_n" link set lo up || exit 1
	done
}

bench_cleanup() {
	for _p in "$tmp"/*.pid; do [ -f "$_p" ] && kill "$(cat "$_p" 2>/dev/null)" 2>/dev/null; done
	sleep 0.3
	# shellcheck disable=SC2086
	sn_forget ${BENCH_SB:-}
	command -v bench_forget_more >/dev/null && bench_forget_more
	for _n in $BENCH_NS; do ip netns del "$_n" 2>/dev/null; done
	rm -rf "$tmp"
}

# bench_plain H P: a plain namespace P joined to H the way a sandbox is (P 10.201.0.2/30, H's
# side pl0 10.201.0.1), with no rules anywhere: the "without sandnet" path.
bench_plain() {
	ip link add eth0 netns "$2" type veth peer name pl0 netns "$1" || exit 1
	ip -n "$2" addr add 10.201.0.2/30 dev eth0
	ip -n "$2" link set eth0 up
	ip -n "$2" route add default via 10.201.0.1
	ip -n "$1" addr add 10.201.0.1/30 dev pl0
	ip -n "$1" link set pl0 up
}

# bench_sandnetd SANDNETD H [FLAGS...]: sandnetd in H (API key k, state and log in $tmp),
# SN_PID set and recorded for the cleanup; exits when it does not start.
bench_sandnetd() {
	_sd=$1 _hn=$2
	shift 2
	printf 'k team\n' >"$tmp/keys"
	sn_start "$_sd" "$_hn" "$tmp/state" "$tmp/keys" "$tmp/log" --log-level warn "$@" || exit 1
	echo "$SN_PID" >"$tmp/sandnetd.pid"
}

# bench_cpu PID...: the user and system CPU time, in clock ticks, of the processes and their
# children so far, as "USER SYS" (the children are nginx's workers).
bench_cpu() {
	for _p in "$@"; do echo "$_p"; pgrep -P "$_p"; done | sort -u | while read -r _p; do
		cat "/proc/$_p/stat" 2>/dev/null
	done | awk '{sub(/^.*\) /, ""); u += $12; s += $13} END {printf "%d %d", u, s}'
}

# bench_busy: the machine's busy CPU time so far, in clock ticks (all but idle and iowait).
bench_busy() {
	awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
