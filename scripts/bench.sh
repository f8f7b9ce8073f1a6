#!/bin/sh
# bench.sh - what `make bench` runs: the benchmark driver bench/bench.py
# (five broker setups, the same loads, one table in bench/results/), then
# the web app's figures (bench/web_bench.py: bench/results/web.md), then
# storing with push notifications on and off (bench/push_drain.py:
# bench/results/push.md), then three nodes with the bus
# (bench/cluster_bench.py: bench/results/cluster.md), then the sizes to plan
# for (bench/sizes.py: bench/results/sizes.md).
# Environment: BUILD, QUICK=1, SETUPS, OUT; ONLY=rpc, ONLY=web, ONLY=push,
# ONLY=spool, ONLY=cluster or ONLY=sizes for one phase; see bench/README.md.
dir=$(dirname "$0")
if [ "${ONLY:-}" = web ]; then
	exec /usr/bin/python3 "$dir/../bench/web_bench.py"
fi
if [ "${ONLY:-}" = push ]; then
	exec /usr/bin/python3 "$dir/../bench/push_drain.py"
fi
if [ "${ONLY:-}" = sizes ]; then
	exec /usr/bin/python3 "$dir/../bench/sizes.py"
fi
/usr/bin/python3 "$dir/../bench/bench.py" "$@"
rc=$?
if [ -z "${ONLY:-}" ]; then
	/usr/bin/python3 "$dir/../bench/web_bench.py" || rc=1
	/usr/bin/python3 "$dir/../bench/push_drain.py" || rc=1
	/usr/bin/python3 "$dir/../bench/cluster_bench.py" || rc=1
	/usr/bin/python3 "$dir/../bench/sizes.py" || rc=1
fi
exit $rc
