# mqchat - top-level build.
#
#   make            build build/mqchat_auth.so, build/mqchat-archiver, build/mqchat,
#                   build/mqchat_store_pg.so (the PostgreSQL stores, loaded when configured)
#                   and the web app in build/web/ (make web)
#   make deps       install the Debian packages the project needs (no-op if present)
#   make run        deps + build + start broker, plugin and archiver on loopback
#   make test       deps + build + unit and integration tests
#   make bench      deps + build + benchmarks (QUICK=1 for the short run)
#   make SAN=1 ...  everything built with AddressSanitizer + UBSan
#
# Every object is built with -fPIC so the same common/ objects go into the
# plugin and the programs, and the unit tests link exactly what ships: the
# archiver's objects but main's are build/libmqchat-archiver.a, which the
# archiver (daemon and CLI) and the unit tests link.

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
	-Wpointer-arith -Wcast-qual -Wsign-compare -Wundef -Wvla -Werror
CPPFLAGS += -D_GNU_SOURCE -Icommon
LDLIBS_COMMON := -lsqlite3 -lcrypto -ljansson -lpthread
# The archiver serves the web app with libmicrohttpd (archiver/http.c).
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# Push notifications (archiver/push*.c) send with libcurl (HTTP/2 for APNs).
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
# The bus between nodes (archiver/bus.c) speaks NATS with libnats.
NATS_LIBS := $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats)

ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  BUILD ?= build-san
endif
BUILD ?= build

ALL_CFLAGS = $(CFLAGS) $(WARN) -fPIC -MMD -MP

# The PostgreSQL backends (common/*_pg.c, archiver/*_pg.c) go into a
# module of their own, not into every program (common/store_conf.h).
STORE_PG_SRC := $(wildcard common/*_pg.c archiver/*_pg.c)
COMMON_SRC := $(filter-out $(STORE_PG_SRC),$(wildcard common/*.c))
PLUGIN_SRC := $(wildcard plugin/*.c)
ARCHIVER_SRC := $(filter-out $(STORE_PG_SRC),$(wildcard archiver/*.c))
CLIENT_SRC := $(wildcard client/*.c)
BENCH_SRC := $(wildcard bench/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_SUPPORT_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
PLUGIN_OBJ := $(call obj,$(PLUGIN_SRC))
ARCHIVER_OBJ := $(call obj,$(ARCHIVER_SRC))
ARCHIVER_MAIN_OBJ := $(call obj,archiver/main.c)
ARCHIVER_LIB_OBJ := $(filter-out $(ARCHIVER_MAIN_OBJ),$(ARCHIVER_OBJ))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
BENCH_OBJ := $(call obj,$(BENCH_SRC))
UNIT_SUPPORT_OBJ := $(call obj,$(UNIT_SUPPORT_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# The fuzz harnesses as objects for the replay tests (tests/fuzz/fuzz.h).
FUZZ_REPLAY_OBJ := $(call obj,$(wildcard tests/fuzz/fuzz_*.c))

PLUGIN_SO := $(BUILD)/mqchat_auth.so
STORE_PG_SO := $(BUILD)/mqchat_store_pg.so
ARCHIVER_BIN := $(BUILD)/mqchat-archiver
ARCHIVER_LIB := $(BUILD)/libmqchat-archiver.a
CLIENT_BIN := $(BUILD)/mqchat
BENCH_BIN := $(if $(BENCH_SRC),$(BUILD)/mqchat-bench)

PROGRAMS := $(PLUGIN_SO) $(if $(STORE_PG_SRC),$(STORE_PG_SO)) $(if $(ARCHIVER_SRC),$(ARCHIVER_BIN)) $(if $(CLIENT_SRC),$(CLIENT_BIN))

.PHONY: all web deps run test unit integration bench fuzz clean
.DEFAULT_GOAL := all
# Keep every object: test support objects are otherwise "intermediate" and
# make would delete them (and print so after the test summary).
.SECONDARY:

all: $(PROGRAMS) $(BENCH_BIN) web

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(BUILD)/gen $(ALL_CFLAGS) -c $< -o $@

# The user store's schema lives in one .sql file, read by the tests too.
$(BUILD)/gen/userdb_schema.inc: common/userdb_schema.sql
	@mkdir -p $(dir $@)
	{ printf 'static const char *schema_sql =\n'; \
	  grep -v '^--' $< | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/\t"/; s/$$/\\n"/'; \
	  printf '\t;\n'; } > $@
$(BUILD)/obj/common/userdb_sqlite.o: $(BUILD)/gen/userdb_schema.inc

# The plugin's broker symbols (mosquitto_*) resolve inside the broker.
$(PLUGIN_SO): $(PLUGIN_OBJ) $(COMMON_OBJ)
	$(CC) -shared -Wl,-Bsymbolic $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

# The PostgreSQL module, loaded with dlopen when DATA/store.conf says
# `store postgresql`, from the folder of the program or plugin that loads
# it, then PKGLIBDIR. It carries its own copy of common/ (-Bsymbolic: its
# calls stay inside it), so it needs nothing from the program that loads
# it, and only it links libpq.
PG_CPPFLAGS := -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
$(call obj,$(STORE_PG_SRC)): CPPFLAGS += $(PG_CPPFLAGS)
$(call obj,common/store_conf.c): CPPFLAGS += -DMQCHAT_PKGLIBDIR='"$(PKGLIBDIR)"'
$(STORE_PG_SO): $(call obj,$(STORE_PG_SRC)) $(COMMON_OBJ)
	$(CC) -shared -Wl,-Bsymbolic $(LDFLAGS) -o $@ $^ -lpq $(LDLIBS_COMMON)

# The archiver speaks MQTT itself (archiver/mqtt.c), with OpenSSL for TLS,
# and serves the web app over HTTP with libmicrohttpd (archiver/http.c).
$(call obj,archiver/http.c): CPPFLAGS += $(MHD_CFLAGS)
$(ARCHIVER_LIB): $(ARCHIVER_LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(ARCHIVER_BIN): $(ARCHIVER_MAIN_OBJ) $(ARCHIVER_LIB) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(ARCHIVER_MAIN_OBJ) $(ARCHIVER_LIB) $(COMMON_OBJ) -lssl $(MHD_LIBS) \
		$(CURL_LIBS) $(NATS_LIBS) $(LDLIBS_COMMON)

# The terminal app draws with ncursesw (wide characters: UTF-8 names and texts).
NCURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
$(call obj,$(filter client/tui%.c,$(CLIENT_SRC))): CPPFLAGS += -DNCURSES_WIDECHAR=1

$(CLIENT_BIN): $(CLIENT_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ -lmosquitto $(NCURSES_LIBS) $(LDLIBS_COMMON)

# The bench fills archives with the archiver's own code (bench/prefill.c).
$(BENCH_OBJ): CPPFLAGS += -Iarchiver
$(BUILD)/mqchat-bench: $(BENCH_OBJ) $(COMMON_OBJ) $(ARCHIVER_LIB)
	$(CC) $(LDFLAGS) -o $@ $(BENCH_OBJ) $(COMMON_OBJ) $(ARCHIVER_LIB) -lmosquitto -lssl \
		$(MHD_LIBS) $(CURL_LIBS) $(LDLIBS_COMMON) -lm

# Unit tests link the plugin's objects too (pure logic is tested where it
# lives); tests/unit/broker_stubs.c stands in for the broker's exports. The
# archiver's library comes last: the linker takes from it only the objects
# a test needs, so a function the test defines itself (a link-time stand-in,
# test_archiver_worker.c) keeps its object out. -lssl: archiver/mqtt.o.
$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ) $(PLUGIN_OBJ) $(UNIT_SUPPORT_OBJ) $(ARCHIVER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iplugin -Iarchiver $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) \
		$(ARCHIVER_LIB) -lcmocka -lssl $(MHD_LIBS) $(CURL_LIBS) $(NATS_LIBS) $(LDLIBS_COMMON)

# The user store's tests run on both backends (tests/unit/pg_fixture.h):
# the module beside the test binaries (where they look for it), libpq for
# the test's own connection.
$(BUILD)/tests/mqchat_store_pg.so: $(STORE_PG_SO)
	@mkdir -p $(dir $@)
	cp $< $@
PG_UNIT := $(addprefix $(BUILD)/tests/,test_userdb test_nick test_archiver_seen test_archive_backends)
PG_UNIT += $(BUILD)/tests/test_push_store
$(PG_UNIT): $(BUILD)/tests/mqchat_store_pg.so
$(PG_UNIT): private CPPFLAGS += $(PG_CPPFLAGS)
$(PG_UNIT): private LDLIBS_COMMON += -lpq

# The terminal app's pure parts (client/tui_line.c, client/tui_store.c) are
# tested where they live: each test links its own client object.
$(BUILD)/tests/test_tui_line: $(call obj,client/tui_line.c)
$(BUILD)/tests/test_tui_store: $(call obj,client/tui_store.c)
$(BUILD)/tests/test_tui_%: CPPFLAGS += -Iclient

# The harnesses each replay test links (FUZZ_REPLAY: entry fuzz_<name>__one).
$(FUZZ_REPLAY_OBJ): CPPFLAGS += -DFUZZ_REPLAY -Iplugin -Iarchiver
$(BUILD)/tests/test_fuzz_replay: $(call obj,$(patsubst %,tests/fuzz/fuzz_%.c,envelope names acl plugin_config auth))
$(BUILD)/tests/test_fuzz_replay_archiver_config: $(call obj,tests/fuzz/fuzz_archiver_config.c)
$(BUILD)/tests/test_fuzz_replay_mqtt: $(call obj,tests/fuzz/fuzz_mqtt.c)
$(BUILD)/tests/test_fuzz_replay_rpc: $(call obj,tests/fuzz/fuzz_rpc.c)
$(BUILD)/tests/test_spool_replay: $(call obj,tests/fuzz/fuzz_spool.c)

# ---- the web app (client/web/) ----
# $(BUILD)/web/ is what the archiver serves (archiver/http.c, `run
# --web-dir`): index.html, sw.js (the service worker: at the root, so its
# scope is the whole app), the style sheets, js/*.js, MQTT.js as
# vendor/mqtt.esm.js (from npm, pinned by client/web/package-lock.json),
# each with a .gz beside it (gzip -9 -n: the same bytes at every build)
# that is sent to browsers that accept gzip. No bundler: the files are the
# app's own ES modules, copied. Files that are not there yet are skipped.
WEB_SRC := $(wildcard client/web/index.html client/web/sw.js client/web/*.css client/web/js/*.js)
MQTT_ESM := client/web/node_modules/mqtt/dist/mqtt.esm.js
WEB_OUT := $(patsubst client/web/%,$(BUILD)/web/%,$(WEB_SRC)) $(BUILD)/web/vendor/mqtt.esm.js
WEB_GZ := $(addsuffix .gz,$(WEB_OUT))

web: $(WEB_OUT) $(WEB_GZ)
	@# A file removed from client/web/ must not stay online from an old build.
	@find $(BUILD)/web -type f $(foreach f,$(WEB_OUT) $(WEB_GZ),! -path '$(f)') -print -delete \
		| sed 's/^/removed stale /'

$(BUILD)/web/%: client/web/%
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/web/vendor/mqtt.esm.js: $(MQTT_ESM)
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/web/%.gz: $(BUILD)/web/%
	gzip -9 -n -c $< > $@.tmp && mv -f $@.tmp $@

# npm ci when node_modules is missing or older than the lock file. Under a
# lock: builds in several BUILD folders share client/web/node_modules, and
# npm ci removes it first.
$(MQTT_ESM): client/web/package-lock.json client/web/package.json
	cd client/web && flock package.json sh -c \
		'[ node_modules/mqtt/dist/mqtt.esm.js -nt package-lock.json ] || npm ci --no-audit --no-fund'
	@touch $@

deps:
	@scripts/deps.sh

run: deps all
	@scripts/run.sh

unit: $(UNIT_BIN)

test: deps all unit
	@BUILD=$(BUILD) SAN=$(SAN) scripts/test.sh

bench: deps all
	@BUILD=$(BUILD) QUICK=$(QUICK) scripts/bench.sh

# ---- install, uninstall, the Debian package (packaging/, docs/INSTALL.md) ----
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [LOCALSTATEDIR=/var]
# installs what $(BUILD) holds, as it was built (`make` first; nothing is
# rebuilt, so `sudo make install` writes no root-owned objects). The files
# under packaging/ name the Debian layout (/usr/bin, /usr/lib/mqchat,
# /etc/mqchat, /var/lib/mqchat); INSTALL_SED writes the
# chosen one into the units and configs. The data folder is made by
# `mqchat-archiver --data LOCALSTATEDIR/lib/mqchat init` (the unit runs it),
# never by make. A config that is already there is kept as it is.
# make uninstall removes every file install put there but the data folder
# and a config that was changed (it says which).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
BINDIR = $(PREFIX)/bin
PKGLIBDIR = $(PREFIX)/lib/mqchat
WEBDIR = $(PREFIX)/share/mqchat/web
MANDIR = $(PREFIX)/share/man
CONFDIR = $(SYSCONFDIR)/mqchat
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
LOGROTATEDIR = $(SYSCONFDIR)/logrotate.d
INSTALL_SED = -e 's\#/usr/bin/mqchat\#$(BINDIR)/mqchat\#g' \
	-e 's\#/usr/lib/mqchat/\#$(PKGLIBDIR)/\#g' \
	-e 's\#/usr/share/mqchat/\#$(PREFIX)/share/mqchat/\#g' \
	-e 's\#/etc/mqchat\#$(CONFDIR)\#g' \
	-e 's\#/var/lib/mqchat\#$(LOCALSTATEDIR)/lib/mqchat\#g' \
	-e 's\#/var/log/mqchat\#$(LOCALSTATEDIR)/log/mqchat\#g'
# path in the tree : where it goes : mode (sed'ed with INSTALL_SED)
INSTALL_TEXT = packaging/archiver.conf:$(CONFDIR)/archiver.conf:0644 \
	packaging/mosquitto.conf:$(CONFDIR)/mosquitto.conf:0644 \
	packaging/systemd/mqchat-archiver.service:$(SYSTEMDUNITDIR)/mqchat-archiver.service:0644 \
	packaging/systemd/mqchat-bus.service:$(SYSTEMDUNITDIR)/mqchat-bus.service:0644 \
	packaging/systemd/mosquitto-mqchat.conf:$(SYSTEMDUNITDIR)/mosquitto.service.d/mqchat.conf:0644 \
	packaging/logrotate:$(LOGROTATEDIR)/mqchat:0644

.PHONY: install uninstall deb test-package
install:
	@for f in $(PLUGIN_SO) $(STORE_PG_SO) $(ARCHIVER_BIN) $(CLIENT_BIN) $(BUILD)/web/index.html; do [ -f "$$f" ] || \
		{ echo "install: $$f is not built: run make$(if $(filter-out build,$(BUILD)), BUILD=$(BUILD)) first" >&2; exit 1; }; done
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(WEBDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(CONFDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/mosquitto.service.d $(DESTDIR)$(LOGROTATEDIR)
	install -m 0755 $(ARCHIVER_BIN) $(CLIENT_BIN) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(PLUGIN_SO) $(STORE_PG_SO) $(DESTDIR)$(PKGLIBDIR)/
	install -m 0644 docs/man/mqchat.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 docs/man/mqchat-archiver.8 $(DESTDIR)$(MANDIR)/man8/
	cd $(BUILD)/web && find . -type f | while read -r f; do \
		install -D -m 0644 "$$f" "$(DESTDIR)$(WEBDIR)/$$f" || exit 1; done
	@for e in $(INSTALL_TEXT); do \
		src=$${e%%:*}; rest=$${e#*:}; dst=$(DESTDIR)$${rest%%:*}; mode=$${rest#*:}; \
		case $$dst in $(DESTDIR)$(CONFDIR)/*) if [ -e "$$dst" ]; then \
			echo "kept $$dst (there already; the new example is $$src)"; continue; fi;; esac; \
		sed $(INSTALL_SED) "$$src" > "$$dst.tmp" && chmod "$$mode" "$$dst.tmp" && \
		mv -f "$$dst.tmp" "$$dst" && echo "installed $$dst" || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mqchat $(DESTDIR)$(BINDIR)/mqchat-archiver \
		$(DESTDIR)$(PKGLIBDIR)/mqchat_auth.so $(DESTDIR)$(PKGLIBDIR)/mqchat_store_pg.so \
		$(DESTDIR)$(MANDIR)/man1/mqchat.1 $(DESTDIR)$(MANDIR)/man8/mqchat-archiver.8
	rm -rf $(DESTDIR)$(WEBDIR)
	@for e in $(INSTALL_TEXT); do \
		src=$${e%%:*}; rest=$${e#*:}; dst=$(DESTDIR)$${rest%%:*}; \
		[ -e "$$dst" ] || continue; \
		if sed $(INSTALL_SED) "$$src" | cmp -s - "$$dst"; then rm -f "$$dst" && echo "removed $$dst"; \
		else echo "kept $$dst (changed since it was installed)"; fi; \
	done
	-rmdir $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(PREFIX)/share/mqchat $(DESTDIR)$(CONFDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/mosquitto.service.d 2>/dev/null
	@[ ! -d $(DESTDIR)$(LOCALSTATEDIR)/lib/mqchat ] || \
		echo "kept $(DESTDIR)$(LOCALSTATEDIR)/lib/mqchat (the data: every account and message; remove it yourself)"

# make deb: $(BUILD)/mqchat_<version>_<arch>.deb with dpkg-deb, from `make
# install PREFIX=/usr` into a temp folder (binaries stripped, man pages
# gzipped as Debian wants), the maintainer scripts of packaging/debian/ and
# Depends from dpkg-shlibdeps (packaging/debian/depends.sh). The version
# is the last commit's time and hash: later commits sort higher. The
# staging folder is not in $(BUILD): its logrotate.d/ and
# mosquitto.service.d/ would be taken for dependency files (*.d).
DEB_VERSION ?= $(shell TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=0.0~git%cd.%h 2>/dev/null || echo 0.0)
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB = $(BUILD)/mqchat_$(DEB_VERSION)_$(DEB_ARCH).deb
deb: all
	@set -e; root=$$(mktemp -d "$${TMPDIR:-/tmp}/mqchat-deb.XXXXXX"); trap 'rm -rf "$$root"' EXIT; \
	chmod 0755 "$$root"; \
	$(MAKE) -s --no-print-directory install BUILD=$(BUILD) DESTDIR="$$root" PREFIX=/usr \
		SYSCONFDIR=/etc LOCALSTATEDIR=/var SYSTEMDUNITDIR=/lib/systemd/system >/dev/null; \
	strip --strip-unneeded --remove-section=.comment --remove-section=.note \
		"$$root/usr/bin/mqchat" "$$root/usr/bin/mqchat-archiver" "$$root/usr/lib/mqchat/mqchat_auth.so" \
		"$$root/usr/lib/mqchat/mqchat_store_pg.so"; \
	gzip -9 -n "$$root/usr/share/man/man1/mqchat.1" "$$root/usr/share/man/man8/mqchat-archiver.8"; \
	install -d -m 0755 "$$root/DEBIAN"; \
	install -m 0644 packaging/debian/conffiles "$$root/DEBIAN/"; \
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$$root/DEBIAN/"; \
	depends=$$(packaging/debian/depends.sh "$$root/usr/bin/mqchat" "$$root/usr/bin/mqchat-archiver" \
		"$$root/usr/lib/mqchat/mqchat_auth.so" "$$root/usr/lib/mqchat/mqchat_store_pg.so"); \
	size=$$(du -sk --exclude=DEBIAN "$$root" | cut -f1); \
	sed -e "s/@VERSION@/$(DEB_VERSION)/" -e "s/@ARCH@/$(DEB_ARCH)/" -e "s/@SIZE@/$$size/" \
		-e "s/@DEPENDS@/$$depends/" packaging/debian/control.in > "$$root/DEBIAN/control"; \
	(cd "$$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | \
		xargs md5sum > DEBIAN/md5sums); \
	dpkg-deb --root-owner-group -Zxz --build "$$root" $(DEB) >/dev/null; \
	echo "built $(DEB)"

# Installs the package on this machine (root), runs its services' command
# lines in a private network namespace, then purges it (tests/package/).
test-package: deps deb
	@BUILD=$(BUILD) DEB=$(DEB) /usr/bin/python3 -m pytest -p no:cacheprovider -q --timeout=280 tests/package

# Several nodes as one service (issue 22): three mosquitto nodes with the
# plugin on 127.0.0.2-4 behind HAProxy running config/haproxy.cfg
# (tests/cluster/, about a minute). Apart from `make test`: each module starts
# its own nodes and HAProxy, and the timing bounds want them not to share
# the cores with parallel workers, so one pytest process, no -n.
# CLUSTER_TESTS=tests/cluster/test_front.py::test_x for a part.
CLUSTER_TESTS ?= tests/cluster
.PHONY: test-cluster
test-cluster: deps all
	@BUILD=$(BUILD) /usr/bin/python3 -m pytest -p no:cacheprovider -q --timeout=120 $(CLUSTER_TESTS)

# libFuzzer harnesses: tests/fuzz/fuzz.mk; FUZZ_SECONDS per harness (default 30).
include tests/fuzz/fuzz.mk
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
