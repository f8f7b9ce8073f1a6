#!/bin/sh
# deps.sh - install the Debian packages mqchat needs, only those missing.
# A no-op (and no apt-get at all) when everything is there.
set -eu

PKGS="make gcc pkg-config openssl
mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
libsqlite3-dev sqlite3 libjansson-dev libssl-dev uthash-dev libcmocka-dev
python3 python3-pytest python3-pytest-xdist python3-pytest-timeout python3-paho-mqtt"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run 'make deps' as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
