#!/bin/sh
# depends.sh - the Depends line of the mqchat package: the shared libraries
# the programs need, as Debian's dpkg-shlibdeps computes them from the
# libraries' symbols files (the lowest version that has every symbol used),
# and the broker whose plugin interface (mosquitto 2.0) the plugin speaks.
#
#   packaging/debian/depends.sh ELF...
#
# Prints one line, e.g. "libc6 (>= 2.34), ..., mosquitto (>= 2.0)".
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/debian"
printf 'Source: mqchat\n\nPackage: mqchat\nArchitecture: any\n' > "$tmp/debian/control"
abs=""
for f in "$@"; do
	case $f in /*) abs="$abs $f";; *) abs="$abs $PWD/$f";; esac
done
# shellcheck disable=SC2086
line=$(cd "$tmp" && dpkg-shlibdeps -O $abs 2>"$tmp/err") || { cat "$tmp/err" >&2; exit 1; }
grep -v 'binaries to analyze should already be installed' "$tmp/err" >&2 || true
echo "${line#shlibs:Depends=}, mosquitto (>= 2.0)"
