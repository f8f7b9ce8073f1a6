#!/bin/sh
# deps.sh - install the Debian packages mqchat needs, only those missing.
# A no-op (and no apt-get at all) when everything is there.
set -eu

# libmicrohttpd-dev: the archiver serves the web app over HTTP
# (archiver/http.c). chromium: the web app's tests drive it headless
# (tests/web/, through npm's puppeteer-core). libncurses-dev: the terminal
# app (ncursesw); tmux: its tests drive it in a real terminal.
# libcurl4-openssl-dev: push notifications (HTTP/2 to APNs, HTTPS to the
# others); python3-cryptography, python3-h2: the tests' fake push
# providers decrypt, verify signatures and speak HTTP/2 as the real ones.
# python3-prometheus-client: the metrics tests read /metrics with
# Prometheus' own text parser.
# systemd (systemd-analyze verify), groff-base and man-db: the install
# test checks the units and the man pages; dpkg-dev: make deb computes
# Depends with dpkg-shlibdeps; iproute2: make test-package brings up
# loopback in its private network namespace (ip). haproxy: the front of
# several nodes (config/haproxy.cfg), which make test-cluster runs.
# libnats-dev: the bus between nodes (mqchat-archiver bus, archiver/bus.c)
# speaks NATS; nats-server: make test-cluster runs one for the bus.
# libpq-dev: the PostgreSQL stores' module (mqchat_store_pg.so, the only
# part that links libpq); postgresql-15: the tests run them on a server of
# their own (initdb and pg_ctl in a temp folder, tests/unit/pg_cluster.sh).
PKGS="make gcc pkg-config openssl
mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
libsqlite3-dev sqlite3 libjansson-dev libssl-dev uthash-dev libcmocka-dev libmicrohttpd-dev
python3 python3-pytest python3-pytest-xdist python3-pytest-timeout python3-paho-mqtt
chromium libncurses-dev tmux
libcurl4-openssl-dev python3-cryptography python3-h2
python3-prometheus-client
systemd groff-base man-db dpkg-dev iproute2
haproxy libnats-dev nats-server
libpq-dev postgresql-15"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js and npm run the MQTT.js interoperability test, install MQTT.js
# for the web app (make web) and run its browser tests. Checked as
# commands, not packages: a node from another source (which brings its own
# npm) must not get Debian's npm on top of it.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
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

# Debian starts the packaged broker as a service on 127.0.0.1:1883 right
# after installing it, which is the port `make run` needs. mqchat runs its
# own broker with its own config, so a service that this script brought in
# is stopped and disabled again (a broker that was there before is left as is).
case " $missing " in
*" mosquitto "*)
	if [ -d /run/systemd/system ] && systemctl is-active --quiet mosquitto.service 2>/dev/null; then
		echo "deps: stopping and disabling the mosquitto.service just installed (mqchat starts its own broker; undo: systemctl enable --now mosquitto)"
		systemctl disable --now mosquitto.service || true
	fi
	;;
esac
# The same for nats-server: the tests start their own on a free port.
case " $missing " in
*" nats-server "*)
	if [ -d /run/systemd/system ] && systemctl is-active --quiet nats-server.service 2>/dev/null; then
		echo "deps: stopping and disabling the nats-server.service just installed (the tests start their own; undo: systemctl enable --now nats-server)"
		systemctl disable --now nats-server.service || true
	fi
	;;
esac
# The same for PostgreSQL: Debian makes a cluster "main" and starts it on
# port 5432; mqchat's tests start servers of their own in temp folders.
case " $missing " in
*" postgresql-15 "*)
	if [ -d /run/systemd/system ] && systemctl is-active --quiet postgresql.service 2>/dev/null; then
		echo "deps: stopping and disabling the postgresql.service just installed (the tests start their own servers; undo: systemctl enable --now postgresql)"
		systemctl disable --now postgresql.service || true
	fi
	;;
esac
