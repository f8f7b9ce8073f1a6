#!/bin/sh
# pg_cluster.sh - a PostgreSQL 15 server of a test's own, in a folder of
# its own, reachable only through a Unix socket in that folder (no TCP:
# listen_addresses is empty, so the port only names the socket file).
#
#   pg_cluster.sh start DIR   initdb DIR/pg (user mqchat, trust), start it:
#                             socket DIR/pg/.s.PGSQL.5432, log DIR/pg.log
#   pg_cluster.sh restart DIR stop it as a crash would, and start it again
#   pg_cluster.sh crash DIR   stop it as a crash would (pg_ctl -m immediate)
#   pg_cluster.sh resume DIR  start it again after a crash
#   pg_cluster.sh stop DIR    stop it if it runs (fast: the test is over)
#
# Exit 77: PostgreSQL 15 is not installed (the caller skips, saying so).
# PostgreSQL refuses to run as root ("cannot be run as root"): as root,
# DIR is given to nobody, and initdb, the server and pg_ctl run as nobody
# (setpriv, as the tests start the broker as its user). Durability is off
# (fsync=off, initdb -N): the data is thrown away with DIR.
set -eu
# MQCHAT_PG_BIN: another build of PostgreSQL 15 (or a missing one, to see the skip).
BIN=${MQCHAT_PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=$1
dir=$2
as=""
if [ "$(id -u)" -eq 0 ]; then
	as="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
fi

case $cmd in
start)
	if [ ! -x "$BIN/initdb" ]; then
		echo "pg_cluster: no $BIN/initdb (Debian: apt-get install postgresql-15)" >&2
		exit 77
	fi
	[ -z "$as" ] || chown nobody:nogroup "$dir"
	$as "$BIN/initdb" -D "$dir/pg" -U mqchat --auth=trust -E UTF8 --locale=C -N \
		> "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	$as "$BIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
		-o "-c listen_addresses= -k $dir/pg -p 5432 -c fsync=off" start > /dev/null \
		|| { cat "$dir/pg.log" >&2; exit 1; }
	;;
restart)
	# -m immediate: as a crash would, every connection cut.
	$as "$BIN/pg_ctl" -D "$dir/pg" -m immediate -w -t 60 stop > /dev/null
	$as "$BIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
		-o "-c listen_addresses= -k $dir/pg -p 5432 -c fsync=off" start > /dev/null
	;;
crash)
	$as "$BIN/pg_ctl" -D "$dir/pg" -m immediate -w -t 60 stop > /dev/null
	;;
resume)
	$as "$BIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
		-o "-c listen_addresses= -k $dir/pg -p 5432 -c fsync=off" start > /dev/null
	;;
stop)
	[ -f "$dir/pg/postmaster.pid" ] || exit 0
	$as "$BIN/pg_ctl" -D "$dir/pg" -m fast -w -t 60 stop > /dev/null
	;;
*)
	echo "usage: pg_cluster.sh start|restart|crash|resume|stop DIR" >&2
	exit 2
	;;
esac
