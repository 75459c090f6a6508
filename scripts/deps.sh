#!/bin/sh
# Installs the Debian packages of deps/debian.txt that are not installed yet.
# Runs apt-get only when something is missing, so a prepared machine pays nothing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
list="$top/deps/debian.txt"
missing=""
for p in $(sed -e 's/#.*//' "$list"); do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root; run: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# the servers installed for tests and benchmarks (haproxy, nginx) must not start as system
# services: invoke-rc.d asks policy-rc.d, and 101 means "not now"
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
