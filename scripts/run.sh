#!/bin/bash
# run.sh - start mqchat locally in the foreground (what `make run` runs
# after `make deps all`): mosquitto with the plugin and config/mosquitto.conf,
# and the archiver, both on 127.0.0.1. Ctrl-C (SIGINT) or SIGTERM stops both.
#
# Environment:
#   DATA   data folder (default var, git-ignored); a second run reuses it
#   PORT   MQTT port on 127.0.0.1 (default 1883)
#   BUILD  build folder (default build)
#   TLS_PORT  MQTT over TLS on 127.0.0.1 (default 8883; 0: no TLS listener)
#   WS_PORT   MQTT over WebSockets on 127.0.0.1 (default 8080; 0: none)
#   HTTP_PORT the web app on http://127.0.0.1:HTTP_PORT/ (default 8090; 0:
#             none), served by the archiver from BUILD/web (make web); the
#             app speaks MQTT over WebSockets, so WS_PORT=0 means no web app
#   METRICS_PORT  the archiver's /metrics (Prometheus) and /health on
#             http://127.0.0.1:METRICS_PORT/ (default 9464; 0: none)
#   TLS_DIR   folder with the operator's ca.crt, server.crt and server.key;
#             unset: DATA/tls, made by scripts/mkcert.sh on the first run
#   SPOOL_MB  the node's spool, DATA/spool, of that many MiB (1..4096;
#             default 0: none): the plugin writes every message to it
#             before the broker acknowledges it (plugin_opt_spool_mb) and
#             the archiver reads it (--spool) instead of subscribing, so a
#             killed broker loses nothing it acknowledged (archiver/README.md,
#             "The spool")
#
# The broker's config is config/mosquitto.conf with these paths and ports,
# written at every start to DATA.run/mosquitto.conf: DATA.run is a folder
# beside DATA (var.run for var) that holds what this script writes for
# itself and for the broker (the config, run.lock); the archiver gets
# --port.
#
# Privileges, started as root (docs/ARCHITECTURE.md has the table of who
# owns what): the broker and the archiver run as the `mosquitto` user
# (setpriv), which owns DATA and every file in it but tls/ (root's, with
# the CA's key; the server's key is mosquitto's). Root reads, writes and
# runs nothing inside DATA that the broker's user could have replaced: the
# broker's config and run.lock are in DATA.run, root's and out of that
# user's reach; init runs as the owner; root only changes owners there
# (never through a link) and writes tls/ from inside it (scripts/mkcert.sh).
# A folder above DATA.run, a file root reads or runs (config, scripts,
# build) that user may change is refused. When the plugin or the data
# folder are out of that user's reach (a checkout under /root, mode 0700),
# both run as root, the config says `user root`, the reason is printed,
# and DATA is root's. Started by another user, everything runs as that
# user.
set -u
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
DATA=${DATA:-var}
DATA=${DATA%/}
PORT=${PORT:-1883}
TLS_PORT=${TLS_PORT:-8883}
WS_PORT=${WS_PORT:-8080}
HTTP_PORT=${HTTP_PORT:-8090}
METRICS_PORT=${METRICS_PORT:-9464}
SPOOL_MB=${SPOOL_MB:-0}
# The operator's certificates, or the local CA made here.
own_tls=0
[ -n "${TLS_DIR:-}" ] && own_tls=1
TLS_DIR=${TLS_DIR:-$DATA/tls}
TLS_DIR=${TLS_DIR%/}
PLUGIN=$BUILD/mqchat_auth.so
ARCHIVER=$BUILD/mqchat-archiver
aconf=config/archiver.conf
BROKER_USER=mosquitto
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
# Bounded waits (seconds).
START_WAIT=10
STOP_WAIT=10

RUNDIR=$DATA.run

abspath() { case $1 in /*) printf '%s' "$1";; *) printf '%s/%s' "$PWD" "$1";; esac; }
say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: Error: %s\n' "$*" >&2; exit 1; }

# ---- checks that need nothing started ----

# Paths go into a config file: refuse what would need quoting there.
case $DATA in
	''|*[!A-Za-z0-9_./-]*) die "DATA must be a path of letters, digits and _ . / - (got '$DATA')";;
esac
case $BUILD in
	''|*[!A-Za-z0-9_./-]*) die "BUILD must be a path of letters, digits and _ . / - (got '$BUILD')";;
esac
case $PORT in
	''|*[!0-9]*) die "PORT must be a number from 1 to 65535 (got '$PORT')";;
esac
if [ "${#PORT}" -gt 5 ] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
	die "PORT must be a number from 1 to 65535 (got '$PORT')"
fi
for v in TLS_PORT WS_PORT HTTP_PORT METRICS_PORT; do
	p=${!v}
	case $p in
		''|*[!0-9]*) die "$v must be a number from 1 to 65535, or 0 for none (got '$p')";;
	esac
	if [ "${#p}" -gt 5 ] || [ "$p" -gt 65535 ]; then
		die "$v must be a number from 1 to 65535, or 0 for none (got '$p')"
	fi
	[ "$p" -ne 0 ] && [ "$p" -eq "$PORT" ] && die "$v and PORT are both $p: give each its own port"
done
[ "$TLS_PORT" -ne 0 ] && [ "$TLS_PORT" -eq "$WS_PORT" ] && die "TLS_PORT and WS_PORT are both $TLS_PORT: give each its own port"
for v in TLS_PORT WS_PORT; do
	[ "$HTTP_PORT" -ne 0 ] && [ "$HTTP_PORT" -eq "${!v}" ] && die "HTTP_PORT and $v are both $HTTP_PORT: give each its own port"
done
for v in TLS_PORT WS_PORT HTTP_PORT; do
	[ "$METRICS_PORT" -ne 0 ] && [ "$METRICS_PORT" -eq "${!v}" ] && die "METRICS_PORT and $v are both $METRICS_PORT: give each its own port"
done
case $TLS_DIR in
	''|*[!A-Za-z0-9_./-]*) die "TLS_DIR must be a path of letters, digits and _ . / - (got '$TLS_DIR')";;
esac
# The plugin's own range (common/spool.h); said here, before anything starts.
case $SPOOL_MB in
	''|*[!0-9]*) die "SPOOL_MB must be a number from 1 to 4096, or 0 for no spool (got '$SPOOL_MB')";;
esac
if [ "${#SPOOL_MB}" -gt 4 ] || [ "$SPOOL_MB" -gt 4096 ]; then
	die "SPOOL_MB must be a number from 1 to 4096, or 0 for no spool (got '$SPOOL_MB')"
fi

[ -x "$MOSQUITTO" ] || die "mosquitto is not installed: run 'make deps' as root"
[ -r "$PLUGIN" ] || die "$PLUGIN is not built: run 'make' first"

# ---- nothing root reads may be the broker's user's to change ----

# The first of the paths "$@" (absolute), or of the folders above them,
# that the broker's user may change: its own, or writable without the
# sticky bit (which keeps others' entries in place). Nothing if none.
broker_may_change() {
	runuser -u "$BROKER_USER" -- sh -c '
		for p; do
			while :; do
				if [ -O "$p" ] || { [ -w "$p" ] && { [ ! -d "$p" ] || [ ! -k "$p" ]; }; }; then
					printf "%s\n" "$p"
					exit 0
				fi
				[ "$p" = / ] && break
				p=$(dirname -- "$p")
			done
		done' sh "$@"
}
if [ "$(id -u)" -eq 0 ] && getent passwd "$BROKER_USER" >/dev/null; then
	# What root writes and the broker reads (DATA.run), what root reads
	# or runs (the shipped config, mkcert, the build): by its path and by
	# the path it resolves to.
	for p in "$RUNDIR" config/mosquitto.conf scripts/mkcert.sh "$PLUGIN" "$ARCHIVER"; do
		p=$(abspath "$p")
		bad=$(broker_may_change "$p" "$(readlink -m -- "$p")")
		[ -z "$bad" ] || die "the '$BROKER_USER' user may change $bad, and root reads or runs $p through it: give it to root (chown root, chmod go-w), or choose another DATA"
	done
fi

# ---- one make run per data folder ----

# RUNDIR/run.lock (common/datalock.h has the protocol): an exclusive flock
# on descriptor 9 (read-only), held by this script and inherited by the
# broker and the archiver, so the folder stays taken while any of them
# lives, and is free again when the last one dies, however it dies. The
# file's one line says who holds it: "<pid> <what>".
holder() {  # "pid N (WHAT)" from line $2 of lock file $1
	case $2 in
		[0-9]*' '*) printf 'pid %s (%s)' "${2%% *}" "${2#* }";;
		*) printf 'another process (it holds %s)' "$1";;
	esac
}
# Run "$@" as the owner of DATA when that is not root: what is in the
# folder is that user's to replace, so root opens none of it.
as_owner() {
	local uid
	uid=$(stat -c %u "$DATA" 2>/dev/null || echo 0)
	if [ "$(id -u)" -eq 0 ] && [ "$uid" -ne 0 ]; then
		setpriv --reuid="$uid" --regid="$(stat -c %g "$DATA")" --clear-groups -- "$@"
	else
		"$@"
	fi
}
# RUNDIR: a real folder, ours alone (the broker reads its config there).
make_rundir() {
	[ -L "$RUNDIR" ] && die "$RUNDIR is a symbolic link: refusing to follow it (remove it)"
	[ -d "$RUNDIR" ] || mkdir -m 0755 "$RUNDIR" || die "cannot create $RUNDIR (beside $DATA: make run keeps its own files there)"
	[ -O "$RUNDIR" ] || die "$RUNDIR belongs to $(stat -c %U "$RUNDIR"), not to $(id -un): make run keeps the broker's config there"
	case $(stat -c %A "$RUNDIR") in
		?????w????|????????w?) die "$RUNDIR may be written by others ($(stat -c %A "$RUNDIR")): chmod go-w it";;
	esac
}
lock_data() {
	make_rundir
	: >> "$RUNDIR/run.lock" && exec 9<"$RUNDIR/run.lock" || die "cannot open $RUNDIR/run.lock"
	if ! flock -n 9; then
		exec 9<&-
		die "$DATA is in use by $(holder "$RUNDIR/run.lock" "$(head -n 1 "$RUNDIR/run.lock")"): one make run per data folder; stop that one first, or give this one another DATA=..."
	fi
	printf '%s make run (scripts/run.sh)\n' "$$" > "$RUNDIR/run.lock"
	# A daemon started by hand holds archiver.lock, and a make run of the
	# previous release DATA/run.lock (a shared lock taken for a moment
	# here conflicts with their exclusive ones).
	for f in archiver.lock run.lock; do
		[ -L "$DATA/$f" ] && die "$DATA/$f is a symbolic link, not a file mqchat made: refusing to follow it (remove it)"
		if [ -f "$DATA/$f" ] && ! as_owner flock -n -s "$DATA/$f" true; then
			die "$DATA is in use by $(holder "$DATA/$f" "$(as_owner head -n 1 "$DATA/$f")"): stop it first (one make run or archiver per data folder)"
		fi
	done
}
locked=0
# The folder is given to the broker's user below: never take over a folder
# that is not (or not going to be) an mqchat data folder, such as DATA=/tmp.
# (run.lock alone is what a first start of the previous release that
# failed early left.)
if [ -d "$DATA" ] && [ ! -e "$DATA/auth.db" ] &&
	[ -n "$(ls -A "$DATA" | grep -vx 'run.lock')" ]; then
	die "$DATA exists, is not empty and holds no auth.db: it is not an mqchat data folder (choose a new or empty folder)"
fi
# Before anything else: the ports below may well be this folder's own
# broker, and the generated config is the first run's.
if [ -d "$DATA" ]; then
	lock_data
	locked=1
fi

# ---- ports ----

# True if something listens on TCP port $1 on 127.0.0.1 or on every
# address: read from /proc rather than by connecting, which a TLS or MQTT
# listener would log as a failed handshake or a protocol error.
port_busy() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '
		$4 == "0A" && substr($2, length($2) - 4) == p {
			a = substr($2, 1, length($2) - 5)
			if (a == "0100007F" || a == "00000000" || a ~ /^0+$/ ||
			    a == "00000000000000000000000001000000" ||
			    a == "0000000000000000FFFF00000100007F") { found = 1 }
		}
		END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# The process listening on port $1 as "NAME",pid=N, if ss may tell.
port_owner() {
	command -v ss >/dev/null 2>&1 || return 0
	ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -n 1
}
# If pid $1 is a process of a make run, the data folder it runs on.
run_data_of() {
	tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | sed -n 's/^MQCHAT_RUN_DATA=//p' | head -n 1
}
port_taken() {  # $1 port, $2 what to say to change it
	local who pid other
	who=$(port_owner "$1")
	pid=${who##*pid=}
	other=""
	[ -n "$who" ] && other=$(run_data_of "$pid")
	{
		if [ -n "$other" ]; then
			printf 'run: Error: port %s on 127.0.0.1 is already in use by an earlier make run: its broker (pid %s) on DATA=%s.\n' "$1" "$pid" "$other"
			printf 'run: Stop that one first (Ctrl-C where it runs, or kill %s), or %s\n' \
				"$(head -n 1 "$other.run/run.lock" 2>/dev/null | sed -n 's/^\([0-9][0-9]*\) .*/\1/p' | grep . || echo "$pid")" "$2"
		else
			printf 'run: Error: port %s on 127.0.0.1 is already in use%s.\n' "$1" "${who:+ (by $who)}"
			[ "$1" = "$PORT" ] && printf 'run: If it is the system mosquitto service: systemctl stop mosquitto\n'
			printf 'run: Or %s\n' "$2"
		fi
	} >&2
	exit 1
}
if port_busy "$PORT"; then
	port_taken "$PORT" "use another port: make run PORT=$((PORT == 65535 ? 1884 : PORT + 1))"
fi
for p in $TLS_PORT $WS_PORT $HTTP_PORT $METRICS_PORT; do
	if [ "$p" -ne 0 ] && port_busy "$p"; then
		port_taken "$p" "use others: make run TLS_PORT=... WS_PORT=... HTTP_PORT=... METRICS_PORT=... (0 for none)"
	fi
done

# ---- the data folder ----

if [ ! -x "$ARCHIVER" ] && [ ! -e "$DATA/auth.db" ]; then
	die "$ARCHIVER is not built yet, so the data folder cannot be created ($ARCHIVER --data $DATA init): build it first"
fi
# 0750 as init makes it (the TLS step below lets others through to ca.crt).
mkdir -p "$(dirname "$DATA")" || die "cannot create the folder of $DATA"
[ -d "$DATA" ] || mkdir -m 0750 "$DATA" || die "cannot create $DATA"
[ "$locked" -eq 1 ] || lock_data
# ---- who the broker and the archiver run as ----

# Decided before init, which runs as that user.
local_conf=""
why=""
run_user=""     # started as root: whom the folder and its files belong to
asu=()          # the prefix of what runs as run_user (setpriv), if not root
if [ "$(id -u)" -eq 0 ]; then
	if ! getent passwd "$BROKER_USER" >/dev/null; then
		why="there is no '$BROKER_USER' user"
	# Absolute paths: the check must walk every folder above them, as
	# SQLite does (it turns a relative path into an absolute one).
	elif ! runuser -u "$BROKER_USER" -- test -r "$(abspath "$PLUGIN")"; then
		why="the '$BROKER_USER' user cannot read $(abspath "$PLUGIN") (a checkout under a private folder such as /root?)"
	# (DATA itself is given to that user below.)
	elif ! runuser -u "$BROKER_USER" -- test -x "$(dirname "$(abspath "$DATA")")"; then
		why="the '$BROKER_USER' user cannot reach $(abspath "$DATA")"
	elif [ -x "$ARCHIVER" ] && ! runuser -u "$BROKER_USER" -- test -x "$(abspath "$ARCHIVER")"; then
		why="the '$BROKER_USER' user cannot run $(abspath "$ARCHIVER")"
	elif [ -r "$aconf" ] && ! runuser -u "$BROKER_USER" -- test -r "$(abspath "$aconf")"; then
		why="the '$BROKER_USER' user cannot read $(abspath "$aconf")"
	fi
	if [ -n "$why" ]; then
		run_user=root
	else
		run_user=$BROKER_USER
		asu=(setpriv --reuid="$BROKER_USER" --regid="$BROKER_USER" --init-groups --)
	fi
fi

# Root changes owners in the folder, and nothing else. Regular files of one
# link only, each changed itself (-h) from inside its folder (-execdir), so
# no link, and no folder of root's moved in (tls/), is ever followed.
give_files() {  # $1: user; the folder's own files and those of mosquitto/
	local top=("$DATA")
	[ -d "$DATA/mosquitto" ] && [ ! -L "$DATA/mosquitto" ] && top+=("$DATA/mosquitto")
	find "${top[@]}" -mindepth 1 -maxdepth 1 -type f -links 1 ! -user "$1" \
		-execdir chown -h "$1:" {} + || die "cannot give the files of $DATA to the '$1' user"
}
# What the previous release wrote here (as root, under make run as root):
# run.lock and the broker's config are in $RUNDIR now. rm removes a link,
# never what it points to.
rm -rf -- "$DATA/conf.d" "$DATA/mosquitto-run.conf" "$DATA/run.lock" ||
	die "cannot remove the previous release's conf.d, mosquitto-run.conf and run.lock from $DATA"
if [ -n "$run_user" ]; then
	if [ "$run_user" = root ]; then
		# Both run as root: take the folder from whoever had it first, so
		# nobody else may put anything there, then refuse what another
		# owner may have left to make root follow.
		chown -h root: "$DATA" "$DATA/mosquitto" 2>/dev/null
		chown -R -h -P root: "$DATA" || die "cannot give $DATA to root"
		link=$(find "$DATA" -type l -print -quit)
		[ -z "$link" ] || die "$link is a symbolic link, not a file mqchat made: refusing to run as root on it (remove it)"
	else
		# The folder last: one of root's (a run that kept root) cannot
		# change while its files are given away.
		give_files "$run_user"
		if [ -d "$DATA/mosquitto" ] && [ ! -L "$DATA/mosquitto" ]; then
			chown -h "$run_user:" "$DATA/mosquitto" || die "cannot give $DATA/mosquitto to the '$run_user' user"
		fi
		chown "$run_user:" "$DATA/." || die "cannot give $DATA to the '$run_user' user"
	fi
	if [ -n "$why" ]; then
		say "the broker keeps running as root: $why."
		say "(Clone to a folder the '$BROKER_USER' user can read, e.g. under /srv or /opt, to avoid this.)"
		say "$DATA is owned by root, as both processes run as root"
		local_conf="# The broker stays root because $why.\nuser root\n"
	else
		say "the broker and the archiver run as the '$BROKER_USER' user, which owns $DATA"
	fi
fi

if [ -x "$ARCHIVER" ]; then
	"${asu[@]}" "$ARCHIVER" --data "$DATA" init || die "'$ARCHIVER --data $DATA init' failed (see above)"
	have_archiver=1
else
	have_archiver=0
	say "$ARCHIVER is not built yet: starting the broker alone with the existing $DATA/auth.db"
fi
for f in mosquitto.log archiver.log; do
	[ -L "$DATA/$f" ] && die "$DATA/$f is a symbolic link, not a file mqchat made: remove it (the broker and the archiver append to their logs)"
done
# The logs name users and addresses: not for everyone. Made by the folder's
# owner, as everything in it.
"${asu[@]}" sh -c 'umask 027 && mkdir -p "$0/mosquitto" && for f; do [ -e "$f" ] || : > "$f" || exit 1; done' \
	"$DATA" "$DATA/mosquitto.log" "$DATA/archiver.log" || die "cannot create $DATA/mosquitto and the logs in $DATA"

# ---- TLS certificates ----

# The broker reads them as its own user: its key must be that user's.
if [ "$TLS_PORT" -ne 0 ]; then
	drops=0
	[ "$(id -u)" -eq 0 ] && [ -z "$why" ] && drops=1
	if [ "$own_tls" -eq 0 ]; then
		kowner=()
		[ "$drops" -eq 1 ] && kowner=(--owner "$BROKER_USER")
		scripts/mkcert.sh "${kowner[@]}" "$TLS_DIR" || die "cannot make the TLS certificates in $TLS_DIR (see above)"
	fi
	for f in ca.crt server.crt server.key; do
		[ -r "$TLS_DIR/$f" ] || die "TLS_DIR=$TLS_DIR has no readable $f (it needs ca.crt, server.crt and server.key; TLS_PORT=0 for no TLS)"
	done
	# Clients on this host check the server with ca.crt (0644, in a 0755
	# folder): let everyone through the data folder to it. Others may
	# pass, not list, and every file keeps its own mode (auth.db 0640,
	# archiver.pw and the keys 0600, the logs 0640).
	if [ "$own_tls" -eq 0 ]; then
		chmod o+x "$DATA" || die "cannot let others reach $TLS_DIR/ca.crt through $DATA"
	fi
	for f in ca.crt server.crt server.key; do
		if [ "$drops" -eq 1 ] && ! runuser -u "$BROKER_USER" -- test -r "$(abspath "$TLS_DIR/$f")"; then
			die "the '$BROKER_USER' user cannot read $(abspath "$TLS_DIR/$f"): the broker runs as that user (chown $BROKER_USER it, or TLS_PORT=0)"
		fi
	done
fi

# ---- the broker's config ----

# config/mosquitto.conf with this run's paths and ports, in RUNDIR (never in
# DATA, which the broker's user owns). Port 0: the listener's block goes,
# up to the blank line that ends it.
conf=$RUNDIR/mosquitto.conf
tls_sed="s#^listener 8883 #listener $TLS_PORT #"
[ "$TLS_PORT" -eq 0 ] && tls_sed="/^listener 8883 /,/^$/d"
ws_sed="s#^listener 8080 #listener $WS_PORT #"
[ "$WS_PORT" -eq 0 ] && ws_sed="/^listener 8080 /,/^$/d"
{
	printf '# Written by scripts/run.sh at every start from config/mosquitto.conf: do not edit.\n'
	sed -e "s#^listener 1883 #listener $PORT #" \
		-e "$tls_sed" -e "$ws_sed" \
		-e "s#^plugin build/#plugin $BUILD/#" \
		-e "s#\\([[:space:]]\\)var/#\\1$DATA/#g" \
		-e "s#^\\(cafile\\|certfile\\|keyfile\\) $DATA/tls/#\\1 $TLS_DIR/#" \
		config/mosquitto.conf && printf '%b' "$local_conf"
	# Written before the broker starts, so that whatever it acknowledges
	# is in DATA/spool for the archiver (started with --spool below).
	if [ "$SPOOL_MB" -ne 0 ]; then printf 'plugin_opt_spool_mb %d\n' "$((10#$SPOOL_MB))"; fi
} > "$conf.new" && mv -f "$conf.new" "$conf" || die "cannot write $conf"
spool_say=""
[ "$SPOOL_MB" -ne 0 ] && spool_say=", spool $DATA/spool of $SPOOL_MB MiB"
say "broker config $conf (port $PORT, TLS port $TLS_PORT, WebSockets port $WS_PORT, data $DATA, build $BUILD$spool_say)"

# ---- start, watch, stop ----

bpid=""
apid=""
web=0           # 1: the archiver serves the web app

stop_all() {
	local pid n
	for pid in $apid $bpid; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $apid $bpid; do
		n=0
		while kill -0 "$pid" 2>/dev/null && [ "$n" -lt $((STOP_WAIT * 10)) ]; do
			sleep 0.1
			n=$((n + 1))
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "process $pid did not stop within ${STOP_WAIT}s: killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
}

on_signal() {
	trap '' INT TERM
	say "stopping (broker pid $bpid${apid:+, archiver pid $apid})"
	stop_all
	say "stopped"
	exit 0
}
trap on_signal INT TERM

# Both write to their logs, not to this terminal: what is printed here is
# this script's, and the banner comes once both are up. MQCHAT_RUN_DATA
# marks them as this make run's (a later one that finds a port taken says
# whose it is).
BLOG=$DATA/mosquitto.log
ALOG=$DATA/archiver.log
export MQCHAT_RUN_DATA
MQCHAT_RUN_DATA=$(abspath "$DATA")
# The last lines of log $1 on stderr, indented (when something failed),
# read as the folder's owner (root opens nothing there).
show_log() {
	printf 'run: the last lines of %s:\n' "$1" >&2
	"${asu[@]}" tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/    /' >&2
}

# One of the two exited by itself (or took the terminal's Ctrl-C before
# this script did): stop the other and pass on the outcome.
exited() {
	local what=$1 pid=$2 rc=$3   # $4: its log
	trap '' INT TERM
	if [ "$rc" -eq 0 ]; then
		say "$what (pid $pid) stopped: stopping the rest"
	else
		printf 'run: Error: %s (pid %s) exited with status %s: stopping the rest\n' "$what" "$pid" "$rc" >&2
		show_log "$4"
	fi
	say "stopping (broker pid $bpid${apid:+, archiver pid $apid})"
	stop_all
	say "stopped"
	exit "$rc"
}

# "$@" as run_user, its output appended to log $1, which that user opens
# (so root opens no file in DATA). The shell execs it: $! is its pid.
start_as_owner() {
	local log=$1
	shift
	"${asu[@]}" sh -c 'exec "$@" >> "$0" 2>&1' "$log" "$@" &
}
# A plugin built with SAN=1 needs the ASan runtime loaded first into the
# (unsanitized) broker, or mosquitto refuses to load it. Its stderr (what it
# says before it has read its config: a config error) goes to its log too.
# As run_user from the start: mosquitto 2.0.11 drops root right after its
# config anyway (before it opens a listener), so root would buy nothing.
asan=$(ldd "$PLUGIN" 2>/dev/null | awk '/libasan/ {print $3}')
if [ -n "$asan" ]; then
	start_as_owner "$BLOG" env LD_PRELOAD="$asan" "$MOSQUITTO" -c "$conf"
else
	start_as_owner "$BLOG" "$MOSQUITTO" -c "$conf"
fi
bpid=$!
n=0
# Every listener: a TLS one with a bad key makes mosquitto exit after it
# has opened the plain one.
all_listening() {
	local p
	for p in "$PORT" "$TLS_PORT" "$WS_PORT"; do
		[ "$p" -eq 0 ] || port_busy "$p" || return 1
	done
}
until all_listening; do
	if ! kill -0 "$bpid" 2>/dev/null; then
		wait "$bpid"
		rc=$?
		show_log "$BLOG"
		die "mosquitto exited with status $rc before listening on 127.0.0.1:$PORT (TLS $TLS_PORT, WebSockets $WS_PORT; 0: none); its log: $BLOG"
	fi
	if [ "$n" -ge $((START_WAIT * 10)) ]; then
		stop_all
		show_log "$BLOG"
		die "mosquitto did not listen on 127.0.0.1 ports $PORT $TLS_PORT $WS_PORT within ${START_WAIT}s; its log: $BLOG"
	fi
	sleep 0.1
	n=$((n + 1))
done

if [ "$have_archiver" -eq 1 ]; then
	aargs=(--data "$DATA" run)
	[ -r "$aconf" ] && aargs+=(-c "$aconf")
	# A flag wins over the archiver's config file. The archiver stays on
	# the plain listener: it is on the same host, over loopback, where TLS
	# protects nothing and costs a handshake and encryption per message.
	# (On another host: cafile = DATA/tls/ca.crt and port = 8883 in its
	# config.)
	[ "$PORT" != 1883 ] && aargs+=(--port "$PORT")
	# The broker writes the spool: the archiver must read it, or it fills
	# and the broker refuses messages (archiver/README.md, "The spool").
	[ "$SPOOL_MB" -ne 0 ] && aargs+=(--spool)
	# The web app, served by the archiver (archiver/README.md, "The web
	# app"): it connects to the broker's WebSockets listener.
	if [ "$HTTP_PORT" -eq 0 ]; then
		:
	elif [ "$WS_PORT" -eq 0 ]; then
		say "no web app: it speaks MQTT over WebSockets, and WS_PORT is 0 (HTTP_PORT=0 says no web app)"
	elif [ ! -r "$BUILD/web/index.html" ]; then
		say "no web app: $BUILD/web/index.html is not built (make web builds it)"
	else
		aargs+=(--http-port "$HTTP_PORT" --web-dir "$BUILD/web" --web-mqtt-url "ws://127.0.0.1:$WS_PORT")
		web=1
	fi
	# Its figures and health (archiver/README.md, "Metrics and health"),
	# on loopback.
	[ "$METRICS_PORT" -ne 0 ] && aargs+=(--metrics-port "$METRICS_PORT")
	aoff=$(stat -c %s "$ALOG" 2>/dev/null || echo 0)
	start_as_owner "$ALOG" "$ARCHIVER" "${aargs[@]}"
	apid=$!
	# Up when it has subscribed (its log says so), within a bound.
	n=0
	until "${asu[@]}" tail -c +$((aoff + 1)) "$ALOG" 2>/dev/null | grep -q 'archiver@0: subscribed'; do
		if ! kill -0 "$apid" 2>/dev/null; then
			break   # the loop below reports it, with its log
		fi
		if [ "$n" -ge $((START_WAIT * 10)) ]; then
			say "the archiver has not subscribed within ${START_WAIT}s; it keeps trying (see $ALOG)"
			break
		fi
		sleep 0.1
		n=$((n + 1))
	done
	# Failed at start: no banner, the reason instead.
	if ! kill -0 "$apid" 2>/dev/null; then
		wait "$apid"
		exited "the archiver" "$apid" "$?" "$ALOG"
	fi
else
	say "the archiver is not built yet: no history, RPC or registration answers until it is"
fi
printf '%s make run; broker pid %s%s\n' "$$" "$bpid" "${apid:+, archiver pid $apid}" > "$RUNDIR/run.lock"

# The banner is one write (a reader of this output sees all of it or none).
webline=""
[ "$web" -eq 1 ] && webline="

Web app: http://127.0.0.1:$HTTP_PORT/ (register there, or add a user as below)"
[ "$have_archiver" -eq 1 ] && [ "$METRICS_PORT" -ne 0 ] && webline="$webline
Metrics: http://127.0.0.1:$METRICS_PORT/metrics (Prometheus), health: http://127.0.0.1:$METRICS_PORT/health"

cat <<EOF

mqchat is running on 127.0.0.1:$PORT (broker pid $bpid${apid:+, archiver pid $apid}).
Stop both with Ctrl-C. Logs: $BLOG${apid:+ and $ALOG} (tail -f them).$webline

Add a user (asks for a password):
    $ARCHIVER --data $DATA user add alice
Connect as alice with the mosquitto clients:
    mosquitto_sub -h 127.0.0.1 -p $PORT -u alice -P 'PASSWORD' -i alice -c -q 1 -t 'chat/inbox/alice/#' -v
    mosquitto_pub -h 127.0.0.1 -p $PORT -u bob -P 'PASSWORD' -i bob -q 1 -t chat/inbox/alice/bob \\
        -m '{"id":"m1","type":"text","body":"hello"}'
EOF
if [ -x "$BUILD/mqchat" ]; then
	cat <<EOF
or with the bundled client, a full-screen chat on this terminal (asks for the password):
    $BUILD/mqchat --port $PORT --user alice
EOF
fi
if [ "$TLS_PORT" -ne 0 ]; then
	cat <<EOF
Over TLS (the server certificate is checked against $TLS_DIR/ca.crt):
    mosquitto_sub -h 127.0.0.1 -p $TLS_PORT --cafile $TLS_DIR/ca.crt -u alice -P 'PASSWORD' -i alice -c -q 1 -t 'chat/inbox/alice/#' -v
EOF
	[ -x "$BUILD/mqchat" ] && cat <<EOF
    $BUILD/mqchat --cafile $TLS_DIR/ca.crt --port $TLS_PORT --user alice chat bob
EOF
fi
[ "$WS_PORT" -ne 0 ] && cat <<EOF
Over WebSockets (browser apps): ws://127.0.0.1:$WS_PORT (loopback only)
EOF
echo

# Run until a signal (on_signal exits) or until one of the two exits.
while :; do
	done_pid=""
	wait -n -p done_pid
	rc=$?
	case $done_pid in
		"") [ "$rc" -eq 127 ] && exited mosquitto "$bpid" 1 "$BLOG";;  # no child left
		"$bpid") exited mosquitto "$bpid" "$rc" "$BLOG";;
		"$apid") exited "the archiver" "$apid" "$rc" "$ALOG";;
	esac
done
