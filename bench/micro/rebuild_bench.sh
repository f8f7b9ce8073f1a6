#!/bin/sh
# Build and run bench/micro/rebuild_bench.c against $BUILD (default build)
# after `make BUILD=... all`, with the PostgreSQL module beside it.
# Arguments go to the program (a relative path from the repository).
set -e
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
cc -O2 -g -D_GNU_SOURCE -Icommon -Iplugin -I"$B/gen" -o "$B/rebuild_bench" bench/micro/rebuild_bench.c \
	$(ls "$B"/obj/plugin/*.o) "$B"/obj/tests/unit/broker_stubs.o $(ls "$B"/obj/common/*.o | grep -v '_pg\.o$') \
	-lsqlite3 -ljansson -lssl -lcrypto -ldl -lpthread
exec "$B/rebuild_bench" "$@"
