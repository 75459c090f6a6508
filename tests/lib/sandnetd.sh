# Shell helpers for tests and benchmarks that run sandnetd in a host namespace of their own.
# Source it; the caller owns cleanup (its trap kills $SN_PID and deletes the namespace).

# sn_start SANDNETD HOSTNS STATEDIR KEYSFILE LOGFILE [FLAGS...]: starts sandnetd in HOSTNS's network
# namespace (nsenter keeps the host's mount namespace, where sandbox namespaces are pinned), sets
# SN_PID, and waits up to 5 s for /healthz on 127.0.0.1:7080. Returns 1 (log shown) when it fails.
sn_start() {
	_bin=$1 _ns=$2 _state=$3 _keys=$4 _log=$5
	shift 5
	nsenter --net=/run/netns/"$_ns" "$_bin" --state-dir "$_state" --api-keys "$_keys" \
		--listen 127.0.0.1:7080 "$@" >>"$_log" 2>&1 &
	SN_PID=$!
	_i=0
	until ip netns exec "$_ns" curl -sf -o /dev/null http://127.0.0.1:7080/healthz; do
		_i=$((_i + 1))
		if [ $_i -gt 50 ] || ! kill -0 "$SN_PID" 2>/dev/null; then
			echo "sandnetd did not start:" >&2
			cat "$_log" >&2
			return 1
		fi
		sleep 0.1
	done
}

# sn_api NS KEY METHOD PATH [BODY] [CURL ARGS...]: calls sandnetd's API on 127.0.0.1:7080 inside
# namespace NS with API key KEY; sets $code (the HTTP status) and $body.
sn_api() {
	_ns=$1 _key=$2 _m=$3 _p=$4
	shift 4
	_d=""
	if [ $# -gt 0 ]; then _d=$1; shift; fi
	_out=$(ip netns exec "$_ns" curl -s -m 10 -X "$_m" -H "X-API-Key: $_key" ${_d:+-d "$_d"} "$@" \
		-w '\n%{http_code}' "http://127.0.0.1:7080$_p")
	code=$(printf '%s' "$_out" | tail -n 1)
	body=$(printf '%s' "$_out" | sed '$d')
}

# sn_wait_ready FILE...: waits (up to 10 s) until test servers started with --ready FILE listen.
sn_wait_ready() {
	for _f in "$@"; do
		_i=0
		until [ -e "$_f" ]; do
			_i=$((_i + 1))
			[ $_i -gt 100 ] && { echo "a test server did not start ($_f)" >&2; return 1; }
			sleep 0.1
		done
	done
}

# sn_forget ID...: removes what sandnetd made for these sandboxes when a test ends without deleting
# them (or fails first): the namespace, its resolv.conf directory, its cgroup and what runs in it,
# and its groups in the cgroup v1 hierarchies (pids, memory, cpu on a hybrid mount).
sn_forget() {
	_cg=$(awk '$9 == "cgroup2" || $10 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)/sandnet
	_v1=$(awk '$9 == "cgroup" || $10 == "cgroup" {print $5}' /proc/self/mountinfo)
	for _id in "$@"; do
		ip netns del "sn-$_id" 2>/dev/null
		rm -rf "/etc/netns/sn-$_id"
		if [ -d "$_cg/sb-$_id" ]; then
			# processes an exec left (frozen ones too) go first, or the cgroup stays
			echo 1 >"$_cg/sb-$_id/cgroup.kill" 2>/dev/null
			_i=0
			until rmdir "$_cg/sb-$_id" 2>/dev/null || [ $_i -gt 20 ]; do
				sleep 0.05
				_i=$((_i + 1))
			done
		fi
		for _m in $_v1; do rmdir "$_m/sandnet/sb-$_id" 2>/dev/null; done
	done
	return 0
}

# sn_world H W ADDR/LEN...: a veth between the host namespace H (w0, 192.0.2.1/24) and the world W
# (w1, the addresses given), W's default route via H, forwarding on in H. Both namespaces exist.
sn_world() {
	_h=$1 _w=$2
	shift 2
	ip link add w0 netns "$_h" type veth peer name w1 netns "$_w" || return 1
	ip -n "$_h" addr add 192.0.2.1/24 dev w0
	ip -n "$_h" link set w0 up
	for _a in "$@"; do ip -n "$_w" addr add "$_a" dev w1; done
	ip -n "$_w" link set w1 up
	ip -n "$_w" route add default via 192.0.2.1
	ip netns exec "$_h" sysctl -qw net.ipv4.ip_forward=1
}

# sn_world6 H W: IPv6 over that veth (H 2001:db8:ff::1, W 2001:db8:ff::2) and the world's
# 2001:db8:1::1, routed both ways.
sn_world6() {
	ip -n "$1" addr add 2001:db8:ff::1/64 dev w0 nodad
	ip -n "$2" addr add 2001:db8:ff::2/64 dev w1 nodad
	ip -n "$2" addr add 2001:db8:1::1/128 dev lo
	ip -n "$1" -6 route add 2001:db8:1::/48 via 2001:db8:ff::2
	ip -n "$2" -6 route add default via 2001:db8:ff::1
}

# sn_lowfd SANDNETD FILE N: FILE becomes a program that runs SANDNETD with at most N descriptors
# (give it to sn_start in place of SANDNETD).
sn_lowfd() {
	printf '#!/bin/sh\nexec prlimit --nofile=%s:%s "%s" "$@"\n' "$3" "$3" "$1" >"$2" && chmod +x "$2"
}

# sn_spin PID SECONDS: the CPU time (user + system, clock ticks) PID spends in the next SECONDS.
sn_spin() {
	_t0=$(awk '{print $14 + $15}' "/proc/$1/stat")
	sleep "$2"
	echo $(($(awk '{print $14 + $15}' "/proc/$1/stat") - _t0))
}
