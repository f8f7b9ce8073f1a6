#!/bin/sh
# Build and run bench/micro/ingest_bench.c against $BUILD (default build)
# after `make BUILD=... all`. Arguments go to the program.
set -e
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
cc -O2 -g -D_GNU_SOURCE -Icommon -Iarchiver -o "$B/ingest_bench" bench/micro/ingest_bench.c \
	"$B/libmqchat-archiver.a" $(ls "$B"/obj/common/*.o | grep -v "_pg\.o$") -lssl -lsqlite3 -lcrypto -ljansson -lpthread
exec "$B/ingest_bench" "$@"
