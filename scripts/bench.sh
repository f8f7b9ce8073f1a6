#!/bin/sh
# bench.sh - what `make bench` runs: the benchmark driver bench/bench.py
# (five broker setups, the same loads, one table in bench/results/).
# Environment: BUILD, QUICK=1, SETUPS, OUT; see bench/README.md.
exec /usr/bin/python3 "$(dirname "$0")/../bench/bench.py" "$@"
