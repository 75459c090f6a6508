#!/bin/sh
# Golden files: every input under tests/golden/{native,e2b,sandbox0}/ must convert to the
# canonical JSON in the .out file beside it; every input under tests/golden/invalid/ must be
# refused (exit 1) with exactly the error lines of its .err file.
# usage: run.sh SANDNET [--update]   (--update rewrites the expected files)
set -u
bin=$1
update=${2:-}
dir=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for f in "$dir"/native/*.* "$dir"/e2b/*.* "$dir"/sandbox0/*.*; do
	case $f in *.out) continue ;; esac
	exp=${f%.*}.out
	"$bin" policy check "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$update" = --update ]; then cp "$tmp/out" "$exp"; fi
	if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$exp"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $f (exit $rc)"; cat "$tmp/err"; diff -u "$exp" "$tmp/out" | head -40
	fi
done
for f in "$dir"/invalid/*.*; do
	case $f in *.err) continue ;; esac
	exp=${f%.*}.err
	"$bin" policy check "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$update" = --update ]; then cp "$tmp/err" "$exp"; fi
	if [ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && cmp -s "$tmp/err" "$exp"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $f (exit $rc, want 1)"; diff -u "$exp" "$tmp/err" | head -40
	fi
done
echo "golden: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
