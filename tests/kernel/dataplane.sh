#!/bin/sh
# Data-plane test of the kernel layer: the rendered ruleset, applied through libnftables in a
# namespace that plays the host, must let through exactly what each policy allows.
#
#   sandbox netns S                  host netns H                         world netns W
#   eth0 10.200.0.2/30  ---veth---  sh-t<pid> 10.200.0.1/30   w0 ---veth--- w1 192.0.2.2/24
#        fd00:5a::2/64                        fd00:5a::1/64   192.0.2.1/24     2001:db8:ff::2/64
#                                   (forwarding, table inet    2001:db8:ff::1   + 198.51.100.1, .2,
#                                    sandnet)                                    203.0.113.5,
#                                                                                2001:db8:1::1, 2001:db8:2::1
#                                                                               TCP echo 80,443,8080,22
#                                                                               UDP echo 9999,5353
# usage: dataplane.sh NFT_TOOL        (root; exit 77 when it cannot run here)
set -u
tool=$1
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
S=sn-t$$-s H=sn-t$$-h W=sn-t$$-w IF=sh-t$$
tmp=$(mktemp -d)
cleanup() {
	for p in "$tmp"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	for n in $S $H $W; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

set -e
for n in $S $H $W; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add eth0 netns "$S" type veth peer name "$IF" netns "$H"
ip link add w1 netns "$W" type veth peer name w0 netns "$H"
ip -n "$S" addr add 10.200.0.2/30 dev eth0
ip -n "$S" addr add fd00:5a::2/64 dev eth0 nodad
ip -n "$S" link set eth0 up
ip -n "$S" route add default via 10.200.0.1
ip -n "$S" -6 route add default via fd00:5a::1
ip -n "$H" addr add 10.200.0.1/30 dev "$IF"
ip -n "$H" addr add fd00:5a::1/64 dev "$IF" nodad
ip -n "$H" link set "$IF" up
ip -n "$H" addr add 192.0.2.1/24 dev w0
ip -n "$H" addr add 2001:db8:ff::1/64 dev w0 nodad
ip -n "$H" link set w0 up
ip -n "$H" route add 198.51.100.0/24 via 192.0.2.2
ip -n "$H" route add 203.0.113.0/24 via 192.0.2.2
ip -n "$H" -6 route add 2001:db8::/32 via 2001:db8:ff::2
ip netns exec "$H" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$W" addr add 192.0.2.2/24 dev w1
ip -n "$W" addr add 2001:db8:ff::2/64 dev w1 nodad
ip -n "$W" link set w1 up
for a in 198.51.100.1/32 198.51.100.2/32 203.0.113.5/32; do ip -n "$W" addr add $a dev lo; done
for a in 2001:db8:1::1/128 2001:db8:2::1/128; do ip -n "$W" addr add $a dev lo; done
ip -n "$W" route add default via 192.0.2.1
ip -n "$W" -6 route add default via 2001:db8:ff::1
set +e
# resolve the IPv6 neighbours before the probes: the first forwarded IPv6 connection in a new
# topology otherwise waits for neighbour discovery past the probes' one-second bound
ip netns exec "$H" ping -6 -c1 -W2 fd00:5a::2 >/dev/null 2>&1
ip netns exec "$H" ping -6 -c1 -W2 2001:db8:ff::2 >/dev/null 2>&1
ip netns exec "$S" ping -6 -c1 -W2 2001:db8:ff::2 >/dev/null 2>&1

ip netns exec "$W" python3 "$here/lib/servers.py" --tcp 80,443,8080,22 --udp 9999,5353 \
	--udp-bind 198.51.100.1,198.51.100.2,203.0.113.5,2001:db8:1::1,2001:db8:2::1 \
	--lifetime 300 --ready "$tmp/world.ready" & echo $! >"$tmp/servers.pid"
# a listener on the host, which no sandbox may reach
ip netns exec "$H" python3 "$here/lib/servers.py" --tcp 7080 --lifetime 300 --ready "$tmp/host.ready" &
echo $! >"$tmp/host.pid"
. "$here/lib/sandnetd.sh"
sn_wait_ready "$tmp/world.ready" "$tmp/host.ready" || exit 1

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

apply_table() {
	ip netns exec "$H" "$tool" table --guard 10.200.0.0/16 --guard fd00:5a::/64 \
		--guard 192.0.2.1 --guard 2001:db8:ff::1 --pool 10.200.0.0/16 --pool fd00:5a::/64 \
		--apply || bad "table"
}

rev=0
# policy TEXT: apply it to the sandbox as the next revision
policy() {
	rev=$((rev + 1))
	printf '%s\n' "$1" >"$tmp/p$rev.yaml"
	old=""
	[ $rev -gt 1 ] && old="--old-policy $tmp/p$((rev - 1)).yaml --old-rev $((rev - 1))"
	# shellcheck disable=SC2086
	ip netns exec "$H" "$tool" sandbox --id t$$ --ifname "$IF" --addr4 10.200.0.2 \
		--addr6 fd00:5a::2 --rev $rev --policy "$tmp/p$rev.yaml" $old $extra --apply ||
		bad "apply revision $rev"
}
extra=""

# expect WORD KIND ADDR PORT [probe options]: the probe from the sandbox must print WORD
expect() {
	want=$1; shift
	got=$(ip netns exec "$S" python3 "$here/lib/probe.py" "$@")
	word=${got% *}
	if [ "$word" = "$want" ]; then ok; else bad "rev $rev: $* -> $got, want $want"; fi
}

# a refused TCP connect fails at once, with a reset
expect_fast_reset() {
	got=$(ip netns exec "$S" python3 "$here/lib/probe.py" tcp "$@")
	word=${got% *} ms=${got#* }
	if [ "$word" = reset ] && [ "$ms" -lt 100 ]; then ok; else bad "rev $rev: tcp $* -> $got, want a reset within 100 ms"; fi
}

ping_ok() { ip netns exec "$S" ping -c1 -W1 "$1" >/dev/null 2>&1; }

apply_table

# empty policy: everything is allowed
policy '{}'
expect open tcp 198.51.100.1 80
expect open tcp 2001:db8:1::1 443
expect reply udp 198.51.100.2 9999
if ping_ok 203.0.113.5; then ok; else bad "rev $rev: ping"; fi

# guard rails hold under allow-all: the host, its world-side address, metadata, loopback
expect reset tcp 10.200.0.1 7080
expect reset tcp 192.0.2.1 7080
expect reset tcp 169.254.169.254 80
expect reset tcp 2001:db8:ff::1 7080
# a spoofed source never leaves
ip -n "$S" addr add 10.200.0.77/32 dev eth0
expect timeout tcp 198.51.100.1 80 --src 10.200.0.77
ip -n "$S" addr del 10.200.0.77/32 dev eth0
# root in the sandbox flushing its own ruleset changes nothing
ip netns exec "$S" nft flush ruleset
expect reset tcp 10.200.0.1 7080

# block-all
policy 'egress: {mode: block-all}'
expect_fast_reset 198.51.100.1 80
expect none udp 198.51.100.1 9999
if ping_ok 203.0.113.5; then bad "rev $rev: ping passed"; else ok; fi

# one IP
policy 'egress: {mode: block-all, rules: [{action: allow, to: [198.51.100.1]}]}'
expect open tcp 198.51.100.1 80
expect reset tcp 198.51.100.2 80

# a CIDR with ports and a range
policy 'egress: {mode: block-all, rules: [{action: allow, to: [198.51.100.0/24], ports: [80, "440-450"], protocol: tcp}]}'
expect open tcp 198.51.100.2 80
expect open tcp 198.51.100.2 443
expect reset tcp 198.51.100.2 8080
expect reset tcp 203.0.113.5 80

# udp vs tcp vs icmp
policy 'egress: {mode: block-all, rules: [{action: allow, ports: [9999], protocol: udp}, {action: allow, protocol: icmp}]}'
expect reply udp 198.51.100.1 9999
expect none udp 198.51.100.1 5353
expect reset tcp 198.51.100.1 9999
if ping_ok 203.0.113.5; then ok; else bad "rev $rev: ping"; fi

# first match, both orders
policy 'egress: {mode: allow-all, rules: [{action: deny, to: [198.51.100.0/24]}, {action: allow, to: [198.51.100.1]}]}'
expect reset tcp 198.51.100.1 80
expect open tcp 203.0.113.5 80
policy 'egress: {mode: block-all, rules: [{action: allow, to: [198.51.100.1]}, {action: deny, to: [198.51.100.0/24]}]}'
expect open tcp 198.51.100.1 80
expect reset tcp 198.51.100.2 80

# IPv6
policy 'egress: {mode: block-all, rules: [{action: allow, to: ["2001:db8:1::/48"], ports: [443]}]}'
expect open tcp 2001:db8:1::1 443
expect reset tcp 2001:db8:2::1 443
expect reset tcp 2001:db8:1::1 80

# names without the proxy: TCP that needs a name is refused, never allowed
policy 'egress: {mode: allow-all, rules: [{action: deny, to: [evil.example]}]}'
expect reset tcp 198.51.100.1 80
expect reply udp 198.51.100.1 9999

# an update cuts a flow that is already open
policy '{}'
ip netns exec "$S" python3 "$here/lib/probe.py" hold 198.51.100.1 80 1.0 >"$tmp/hold" &
hold=$!
sleep 0.4
policy 'egress: {rules: [{action: deny, to: [198.51.100.1]}]}'
wait $hold
case $(cat "$tmp/hold") in reset*|timeout*) ok ;; *) bad "open flow after deny: $(cat "$tmp/hold")" ;; esac

# paused: everything dropped; unpaused: the policy again
extra=--paused
policy '{}'
expect timeout tcp 198.51.100.1 80 --timeout 0.5
expect none udp 198.51.100.1 9999
extra=--was-paused
policy '{}'
expect open tcp 198.51.100.1 80
extra=""

# only the current revision's objects exist
n=$(ip netns exec "$H" nft list ruleset | grep -c "sb-t$$-")
if [ "$n" -eq 2 ]; then ok; else bad "$n lines name a sandbox chain, want 2 (the chain, the dispatch element)"; fi

echo "dataplane: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
