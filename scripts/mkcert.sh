#!/bin/sh
# mkcert.sh - make a local CA and a server certificate for the broker's TLS
# listener (what `make run` uses when it finds none).
#
#   scripts/mkcert.sh [--owner USER] [--days N] DIR
#
# Writes into DIR (created 0755 if missing):
#   ca.key      the CA's private key (0600, stays with whoever runs this)
#   ca.crt      the self-signed CA certificate: give it to clients
#               (build/mqchat --cafile DIR/ca.crt, archiver `cafile`)
#   server.key  the broker's private key (0600; with --owner, owned by USER,
#               the account the broker runs as once it drops root)
#   server.crt  the broker's certificate, signed by the CA, for
#               DNS:localhost and IP:127.0.0.1
#
# Idempotent: files that exist are kept. A complete set (ca.crt,
# server.crt, server.key) is left alone, except that --owner is applied to
# server.key again. With ca.crt and ca.key but no server certificate, a
# new one is signed by that CA. Anything else that is partial (a server
# key without its certificate, a CA certificate without its key) is an
# error: this script never overwrites what it did not make.
#
# It works inside DIR (cd), which must be a real folder of the user running
# it that no one else may write: root runs it in a data folder the broker's
# user owns (make run), and that user could otherwise swap DIR for a link,
# or a folder of its own, between two commands (docs/SECURITY.md).
#
# Keys are ECDSA P-256 (fast handshakes, accepted by every current TLS
# stack). The CA is valid 10 years, the server certificate --days (default
# 825, the longest validity common clients accept). A certificate that
# expires within 30 days is reported on stderr.
#
# Exit status: 0 done (or nothing to do), 1 error (message on stderr).
set -u

OPENSSL=${OPENSSL:-openssl}
CA_DAYS=3650
days=825
owner=""

die() { printf 'mkcert: Error: %s\n' "$*" >&2; exit 1; }
say() { printf 'mkcert: %s\n' "$*"; }
usage() { printf 'usage: scripts/mkcert.sh [--owner USER] [--days N] DIR\n' >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
		--owner) [ $# -ge 2 ] || usage; owner=$2; shift 2;;
		--days) [ $# -ge 2 ] || usage; days=$2; shift 2;;
		--) shift; break;;
		-*) printf 'mkcert: Error: unknown option %s\n' "$1" >&2; usage;;
		*) break;;
	esac
done
[ $# -eq 1 ] || usage
dir=${1%/}
[ -n "$dir" ] || usage
case $days in
	''|*[!0-9]*) die "--days must be a number of days from 1 to 36500 (got '$days')";;
esac
if [ "${#days}" -gt 5 ] || [ "$days" -lt 1 ] || [ "$days" -gt 36500 ]; then
	die "--days must be a number of days from 1 to 36500 (got '$days')"
fi
if [ -n "$owner" ] && ! id -u "$owner" >/dev/null 2>&1; then
	die "--owner: there is no user '$owner'"
fi
command -v "$OPENSSL" >/dev/null 2>&1 || die "openssl is not installed: run 'make deps' as root"

# Run openssl quietly; on failure show what it said and stop.
ossl() {
	if ! out=$("$OPENSSL" "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "openssl $1 failed (see above)"
	fi
}

# Warn when a certificate expires within 30 days (or already has).
check_expiry() {
	if ! "$OPENSSL" x509 -in "$1" -noout -checkend 2592000 >/dev/null 2>&1; then
		printf 'mkcert: warning: %s expires within 30 days or has expired (%s): remove it and run this again for a new one\n' \
			"$1" "$("$OPENSSL" x509 -in "$1" -noout -enddate 2>/dev/null)" >&2
	fi
}

# The key itself (-h), never what a link there points to.
give_key() {
	[ -n "$owner" ] || return 0
	chown -h "$owner" server.key || die "cannot give $dir/server.key to the user '$owner'"
}

if [ -L "$dir" ]; then
	die "$dir is a symbolic link: refusing to follow it (remove it)"
fi
if [ -e "$dir" ] && [ ! -d "$dir" ]; then
	die "$dir exists and is not a folder"
fi
if [ ! -d "$dir" ]; then
	# shellcheck disable=SC2174 # the mode is DIR's; folders above it are the caller's
	mkdir -p -m 0755 "$dir" || die "cannot create $dir"
fi
# From here on every name is relative to the folder entered, whatever
# becomes of its path: it must be the folder named (not a link swapped in
# since), its runner's, and writable by nobody else.
was=$(stat -c %d:%i -- "$dir") || die "cannot read $dir"
cd -P -- "$dir" || die "cannot enter $dir"
[ "$(stat -c %d:%i .)" = "$was" ] || die "$dir changed while it was being entered: refusing to write keys there"
[ "$(stat -c %u .)" = "$(id -u)" ] ||
	die "$dir belongs to $(stat -c %U .), not to $(id -un): refusing to write keys there"
case $(stat -c %A .) in
	?????w????|????????w?) die "$dir may be written by others ($(stat -c %A .)): chmod go-w it";;
esac

have() { [ -e "$1" ]; }

if have ca.crt && have server.crt && have server.key; then
	give_key
	check_expiry server.crt
	exit 0
fi
if have server.key || have server.crt; then
	die "$dir has only part of a server certificate (server.key and server.crt go together): remove it or complete it"
fi
if have ca.crt && ! have ca.key; then
	die "$dir has ca.crt but not ca.key, so no server certificate can be signed: put server.crt and server.key there, or remove ca.crt"
fi
if have ca.key && ! have ca.crt; then
	die "$dir has ca.key but not ca.crt: remove ca.key or put its ca.crt there"
fi

# Files are made private first and filled afterwards, so no key is ever
# readable by others, not even for a moment.
umask 077
tmp=$(mktemp -d ./.mkcert.XXXXXX) || die "cannot create a temp folder in $dir"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
if ! have ca.crt; then
	# shellcheck disable=SC2086
	ossl req -x509 $ec -keyout "$tmp/ca.key" -out "$tmp/ca.crt" -days "$CA_DAYS" \
		-subj "/O=mqchat/CN=mqchat local CA $(hostname 2>/dev/null | tr -cd 'A-Za-z0-9.-')" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
	chmod 0644 "$tmp/ca.crt"
	mv "$tmp/ca.key" ca.key && mv "$tmp/ca.crt" ca.crt || die "cannot write the CA into $dir"
	say "made a local CA: $dir/ca.crt (key $dir/ca.key)"
fi

cat > "$tmp/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
# shellcheck disable=SC2086
ossl req $ec -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/O=mqchat/CN=localhost"
ossl x509 -req -in "$tmp/server.csr" -CA ca.crt -CAkey ca.key \
	-set_serial "0x$("$OPENSSL" rand -hex 16)" -days "$days" -sha256 \
	-extfile "$tmp/server.ext" -out "$tmp/server.crt"
ossl verify -CAfile ca.crt "$tmp/server.crt"
chmod 0644 "$tmp/server.crt"
# The key before the certificate: a run interrupted in between leaves a
# key without certificate, which the next run reports instead of keeping.
mv "$tmp/server.key" server.key && mv "$tmp/server.crt" server.crt ||
	die "cannot write the server certificate into $dir"
give_key
say "made a server certificate for localhost and 127.0.0.1: $dir/server.crt (key $dir/server.key)"
exit 0
