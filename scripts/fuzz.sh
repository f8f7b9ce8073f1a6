#!/bin/sh
# fuzz.sh - build the libFuzzer harnesses (tests/fuzz/fuzz_*.c) and run each
# for a bounded time; what `make fuzz` runs. Prints one line per harness
# with its executions and executions per second, and exits non-zero if any
# harness found a crash (the input is kept in build/fuzz/artifacts/<target>/;
# copy it to tests/fuzz/regressions/<target>/ so `make test` replays it).
#
# Environment: FUZZ_SECONDS (per harness, default 30), FUZZ_TARGETS (names,
# default all), FUZZ_CC (default clang).
#
# Installs clang's fuzzer runtime (Debian libclang-rt-<N>-dev) itself when
# -fsanitize=fuzzer cannot link, so `make deps`/`make test` stay lean.
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
FUZZ_CC=${FUZZ_CC:-clang}
OUT=build/fuzz

can_link() {
	tmp=$(mktemp -d)
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){ (void)d; (void)n; return 0; }\n' > "$tmp/t.c"
	"$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" > /dev/null 2>&1
	rc=$?
	rm -rf "$tmp"
	return $rc
}

if ! can_link; then
	major=$("$FUZZ_CC" --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n1)
	pkgs="clang${major:+ libclang-rt-$major-dev}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "fuzz: $FUZZ_CC cannot link -fsanitize=fuzzer; as root: apt-get install $pkgs" >&2
		exit 1
	fi
	echo "fuzz: installing $pkgs"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $pkgs || {
		apt-get update -q && apt-get install -y -q --no-install-recommends $pkgs; } || exit 1
	can_link || { echo "fuzz: $FUZZ_CC still cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

make --no-print-directory FUZZ_CC="$FUZZ_CC" fuzz-build || exit 1

# Harnesses that need files (stores, config files) make them here, in
# memory when /dev/shm is there; a crash leaves them behind, so this is
# emptied after every run and removed at the end.
tmpbase=/dev/shm
[ -d "$tmpbase" ] && [ -w "$tmpbase" ] || tmpbase=${TMPDIR:-/tmp}
MQCHAT_FUZZ_TMP=$(mktemp -d "$tmpbase/mqchat-fuzz.XXXXXX") || exit 1
export MQCHAT_FUZZ_TMP
trap 'rm -rf "$MQCHAT_FUZZ_TMP"' EXIT

targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}
failed=0
for t in $targets; do
	bin=$OUT/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: no harness $bin" >&2; failed=1; continue; }
	# New inputs go to the first (scratch) corpus; the seeds stay as committed.
	work=$OUT/corpus/$t
	art=$OUT/artifacts/$t
	mkdir -p "$work" "$art" tests/fuzz/corpus/$t
	dict=""
	[ -f tests/fuzz/$t.dict ] && dict="-dict=tests/fuzz/$t.dict"
	reg=""
	[ -d tests/fuzz/regressions/$t ] && reg=tests/fuzz/regressions/$t
	log=$OUT/$t.log
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" $dict "$work" tests/fuzz/corpus/$t $reg \
		> "$log" 2>&1 < /dev/null
	rc=$?
	rm -rf "$MQCHAT_FUZZ_TMP" && mkdir -p "$MQCHAT_FUZZ_TMP"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	new=$(sed -n 's/^stat::new_units_added: *//p' "$log")
	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "FAIL fuzz $t: exit $rc after ${execs:-?} executions; log $log, input:"
		ls "$art"
		grep -m1 -A20 -E 'ERROR: |invariant broken|runtime error' "$log"
	else
		echo "ok   fuzz $t: ${execs:-?} executions in ${SECONDS_EACH}s, ${rate:-?}/s, ${new:-0} new inputs"
	fi
	grep -h 'OPEN finding' "$log" || true
done
exit $failed
