#!/bin/sh
# test.sh - run the unit tests (cmocka) and the integration tests (pytest
# against a real broker), then print one closing line "N passed, N failed".
# Exits non-zero if anything failed or nothing ran.
#
# Environment: BUILD (default build), JOBS (pytest workers, default 4; 2 with SAN=1),
# TESTS (pytest selection, e.g. TESTS=tests/integration/test_acl.py).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
# Sanitized builds run 2-5x slower: fewer workers keep the timing bounds of
# the tests honest on 2 cores.
if [ "${SAN:-}" = 1 ]; then JOBS=${JOBS:-2}; else JOBS=${JOBS:-4}; fi
PY=/usr/bin/python3
export BUILD

passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Unit tests: cmocka in TAP mode, one binary per module.
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	if CMOCKA_MESSAGE_OUTPUT=tap "$t" > "$tmp/$name.tap" 2>&1; then rc=0; else rc=$?; fi
	p=$(grep -c '^ok ' "$tmp/$name.tap")
	f=$(grep -c '^not ok ' "$tmp/$name.tap")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		echo "FAIL unit $name"; cat "$tmp/$name.tap"
	else
		echo "ok   unit $name ($p)"
	fi
done

# Integration tests.
sel=${TESTS:-tests/integration}
# $sel unquoted on purpose: TESTS may name several paths.
# shellcheck disable=SC2086
$PY -m pytest -p no:cacheprovider -q -n "$JOBS" --timeout=120 \
	--junitxml="$tmp/junit.xml" $sel
$PY - "$tmp/junit.xml" > "$tmp/counts" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
p = f = 0
try:
    root = ET.parse(sys.argv[1]).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        n = int(s.get("tests", 0)); bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0))
        p += n - bad - sk; f += bad
except Exception:
    f = 1
print(p, f)
PYEOF
read -r ip if_ < "$tmp/counts"
passed=$((passed + ip))
failed=$((failed + if_))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
