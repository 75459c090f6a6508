#!/bin/sh
# CLI contract tests: exit codes, stdin, --help on every command, explain's output.
# usage: run.sh SANDNET
set -u
bin=$1
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# check NAME WANT_EXIT WANT_STDOUT_SUBSTRING COMMAND...
check() {
	name=$1 want=$2 grepfor=$3
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq "$want" ] && { [ -z "$grepfor" ] || grep -qF -- "$grepfor" "$tmp/out" "$tmp/err"; }; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $name: exit $rc (want $want), looking for: $grepfor"
		sed 's/^/  out: /' "$tmp/out" | head -20
		sed 's/^/  err: /' "$tmp/err" | head -20
	fi
}

cat >"$tmp/p.yaml" <<'P'
egress:
  mode: block-all
  rules:
    - {action: allow, to: [github.com, "*.githubusercontent.com", 140.82.112.0/20], ports: [443], protocol: tcp, name: github}
    - {action: deny, to: [169.254.169.254]}
    - {action: allow, to: ["2001:db8::/32"], protocol: icmp}
ingress:
  mode: block-all
  rules:
    - {action: allow, from: [203.0.113.0/24], ports: [8080]}
P
echo '{"allowOut": ["1.1.1.1"], "denyOut": ["0.0.0.0/0"]}' >"$tmp/e2b.json"
echo '{"egress": {"rules": [{"action": "allow", "to": ["10.0.0.1/8"]}, {"action": "x"}]}}' >"$tmp/bad.json"

check help-top 0 "policy check" "$bin" --help
check help-policy 0 "policy convert" "$bin" policy --help
check help-check 0 "policy check" "$bin" policy check --help
check help-convert 0 "--from" "$bin" policy convert --help
check help-explain 0 "--dst" "$bin" policy explain --help
check no-args 2 "usage" "$bin"
check unknown-cmd 2 "unknown command" "$bin" frobnicate
check check-ok 0 '"mode": "block-all"' "$bin" policy check "$tmp/p.yaml"
check check-stdin 0 '"1.1.1.1"' sh -c "\"$bin\" policy check - <\"$tmp/e2b.json\""
check check-bad 1 "egress.rules[0].to[0]: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?" "$bin" policy check "$tmp/bad.json"
check check-bad-2 1 'egress.rules[1].action: "x" is not an action (allow or deny)' "$bin" policy check "$tmp/bad.json"
check check-missing 2 "No such file" "$bin" policy check "$tmp/nope.json"
check check-dir 2 "Is a directory" "$bin" policy check "$tmp"
check check-nofile 2 "needs FILE" "$bin" policy check
check convert-e2b 0 '"block-all"' "$bin" policy convert --from e2b "$tmp/e2b.json"
check convert-wrong 1 "unknown field" "$bin" policy convert --from sandbox0 "$tmp/e2b.json"
check convert-nodialect 2 "--from" "$bin" policy convert "$tmp/e2b.json"
check convert-baddialect 2 "--from takes" "$bin" policy convert --from k8s "$tmp/e2b.json"
check explain-ip 0 '{"verdict":"allow","rule":0,"reason":"egress rule 0 (github) is the first that matches: allow"}' \
	"$bin" policy explain "$tmp/p.yaml" --dst 140.82.112.9 --port 443 --proto tcp
check explain-name 0 '{"verdict":"allow","rule":0,' \
	"$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 443 --proto tcp --name raw.githubusercontent.com
check explain-need-name 0 '{"verdict":"need-name","rule":0,' \
	"$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 443 --proto tcp
check explain-deny 0 '{"verdict":"deny","rule":1,' \
	"$bin" policy explain "$tmp/p.yaml" --dst 169.254.169.254 --port 80 --proto tcp
check explain-mapped 0 '{"verdict":"deny","rule":1,' \
	"$bin" policy explain "$tmp/p.yaml" --dst ::ffff:169.254.169.254 --port 80 --proto tcp
check explain-mode 0 '{"verdict":"deny","rule":null,"reason":"no egress rule matched; the mode block-all decides"}' \
	"$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 80 --proto udp
check explain-icmp6 0 '{"verdict":"allow","rule":2,' \
	"$bin" policy explain "$tmp/p.yaml" --dst 2001:db8::1 --proto icmp
check explain-ingress 0 '{"verdict":"allow","rule":0,' \
	"$bin" policy explain "$tmp/p.yaml" --ingress --src 203.0.113.5 --port 8080
check explain-ingress-deny 0 '{"verdict":"deny","rule":null,' \
	"$bin" policy explain "$tmp/p.yaml" --ingress --src 198.51.100.5 --port 8080
check explain-idna 0 '"verdict":"deny"' \
	"$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 443 --name bücher.example
check explain-badip 2 "not an IP address" "$bin" policy explain "$tmp/p.yaml" --dst 1.2.3 --port 1
check explain-badport 2 "--port" "$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 0
check explain-badproto 2 "--proto" "$bin" policy explain "$tmp/p.yaml" --dst 1.2.3.4 --port 1 --proto sctp
check explain-invalid 1 "did you mean" "$bin" policy explain "$tmp/bad.json" --dst 1.2.3.4 --port 1

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
