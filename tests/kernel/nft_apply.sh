#!/bin/sh
# Applies the renderer's golden files, in order, to the kernel of a network namespace of our own:
# the table, a sandbox's first revision, an update that retires it, another, a pause, a delete.
# Each must commit, and afterwards nothing of the sandbox may be left in the ruleset.
# usage: nft_apply.sh GOLDEN_DIR      (needs root and nft; skipped with exit 77 without them)
set -u
dir=$1
command -v nft >/dev/null 2>&1 || { echo "nft not installed: skipped"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
ns="sn-test-nft-$$"
ip netns add "$ns" || exit 1
trap 'ip netns del "$ns" 2>/dev/null' EXIT INT TERM
pass=0 fail=0
# the dispatch map refers to the sandbox's interface by name only; no link is needed
for f in table.nft sandbox-1-empty.nft sandbox-2-mixed.nft sandbox-3-proxy.nft \
	sandbox-4-paused.nft sandbox-5-delete.nft sandbox-6-split.nft sandbox-7-split-delete.nft; do
	if out=$(ip netns exec "$ns" nft -f "$dir/$f" 2>&1); then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $f:"; echo "$out" | head -20
	fi
done
left=$(ip netns exec "$ns" nft list ruleset | grep -c abc123)
if [ "$left" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $left lines of the deleted sandbox remain"; fi
# the table itself is still whole: the skeleton applies again over itself
if ip netns exec "$ns" nft -f "$dir/table.nft"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: table re-apply"; fi
echo "nft_apply: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
