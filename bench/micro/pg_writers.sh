#!/bin/sh
# pg_writers.sh - the archive's write rate on PostgreSQL with 1, 2 and 3
# archivers at once (docs/SCALING.md, "Bench"): ingest_bench.c's load (one
# ingest thread each, batches as the daemon's), N processes at once into
# one archive, each with its own IB_ID_OFFSET, on a server of its own in a
# temp folder (tests/unit/pg_cluster.sh: Unix socket, fsync=off). Every
# writer takes the one-row seq lock for each batch, so their batches run
# one after another; the sum of their rates is the archive's.
#
#   make all && bench/micro/pg_writers.sh [COUNT] [ROUNDS]
#
# COUNT messages per writer (20000), ROUNDS times 1, 2, 3 writers (2).
# Prints one line per round and writer count: each writer's msg/s, the sum.
set -eu
cd "$(dirname "$0")/../.."
COUNT=${1:-20000}
ROUNDS=${2:-2}
B=${BUILD:-build}
top=$(mktemp -d /tmp/pg_writers.XXXXXX)
chmod 755 "$top"
trap 'sh tests/unit/pg_cluster.sh stop "$top" >/dev/null 2>&1; rm -rf "$top"' EXIT
sh tests/unit/pg_cluster.sh start "$top"
PSQL="${MQCHAT_PG_BIN:-/usr/lib/postgresql/15/bin}/psql -h $top/pg -U mqchat -X -q -A -t"
# Build the program once (ingest_bench.sh builds, then runs it: --count 0).
bench/micro/ingest_bench.sh --runs 1 --count 1 --prefill 0 > /dev/null
round=1
while [ "$round" -le "$ROUNDS" ]; do
	for n in 1 2 3; do
		db="w${round}_$n"
		$PSQL -d postgres -c "CREATE DATABASE $db"
		printf 'store postgresql\nstore_conninfo host=%s/pg port=5432 user=mqchat dbname=%s\n' \
			"$top" "$db" > "$top/store.conf"
		i=1
		while [ "$i" -le "$n" ]; do
			IB_STORE_CONF="$top/store.conf" IB_ID_OFFSET=$((i * 10000000)) \
				"$B/ingest_bench" --runs 1 --count "$COUNT" --prefill 0 > "$top/out.$i" 2>&1 &
			i=$((i + 1))
		done
		wait
		rates=$(sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p' "$top"/out.* | tr '\n' ' ')
		sum=$(echo $rates | tr ' ' '\n' | awk '{s += $1} END {print s}')
		rows=$($PSQL -d "$db" -c "SELECT count(*) || ' rows, seq ' || min(seq) || '-' || max(seq) FROM archive.messages")
		echo "round $round, $n writer(s): $rates-> $sum msg/s ($rows)"
		cat "$top"/out.* | grep -v "^run [0-9]*: " | head -5; rm -f "$top"/out.*
		$PSQL -d postgres -c "DROP DATABASE $db"
	done
	round=$((round + 1))
done
