# fuzz.mk - libFuzzer harnesses, included by the top-level Makefile.
#
# Each tests/fuzz/fuzz_<target>.c is linked with the real sources it tests,
# by clang with -fsanitize=fuzzer,address,undefined, into build/fuzz/.
# scripts/fuzz.sh (`make fuzz`) builds them with `make fuzz-build` and runs
# each for a bounded time. The same harnesses, compiled by the top-level
# Makefile as objects with FUZZ_REPLAY (tests/fuzz/fuzz.h), replay their
# corpora on every `make test` through tests/unit/test_fuzz_replay*.c.

FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
# -Wno-format-nonliteral: clang, unlike gcc, flags vsnprintf in the unit
# tests' broker stubs, which the plugin harnesses share.
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_WARN := $(WARN) -Wno-format-nonliteral

# fuzz_rule(target, sources, libraries)
define fuzz_rule
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/fuzz.h $(2) $(BUILD)/gen/userdb_schema.inc
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(CPPFLAGS) -I$(BUILD)/gen -Iplugin -Iarchiver $(FUZZ_CFLAGS) $(FUZZ_WARN) -o $$@ \
		$$(filter %.c,$$^) $(3)
FUZZ_BINS += $(FUZZ_DIR)/fuzz_$(1)
endef

# The plugin's code links whole, with the unit tests' stand-ins for the broker.
FUZZ_PLUGIN := $(PLUGIN_SRC) $(COMMON_SRC) tests/unit/broker_stubs.c

$(eval $(call fuzz_rule,envelope,common/envelope.c common/names.c,-ljansson))
$(eval $(call fuzz_rule,names,common/names.c,))
$(eval $(call fuzz_rule,acl,$(FUZZ_PLUGIN),$(LDLIBS_COMMON)))
$(eval $(call fuzz_rule,plugin_config,$(FUZZ_PLUGIN),$(LDLIBS_COMMON)))
$(eval $(call fuzz_rule,auth,$(FUZZ_PLUGIN),$(LDLIBS_COMMON)))
# The archiver's RPC code is several files (rpc*.c, archive*.c) that call
# each other: all of the archiver but its main, its operator CLI, its
# daemon loop, and the worker, whose responder the harness stands in for.
# libmicrohttpd (http.c) and libcurl (push.c, push_send.c, rpc_push.c) are
# among them.
FUZZ_RPC := $(filter-out archiver/main.c archiver/worker.c archiver/daemon.c archiver/later.c archiver/cli_%.c,$(ARCHIVER_SRC))
$(eval $(call fuzz_rule,rpc,$(FUZZ_RPC) $(COMMON_SRC),$(LDLIBS_COMMON) -lssl $(MHD_LIBS) $(CURL_LIBS)))
$(eval $(call fuzz_rule,archiver_config,archiver/config.c $(COMMON_SRC),$(LDLIBS_COMMON)))
$(eval $(call fuzz_rule,spool,common/spool.c common/err.c common/rand.c common/timeutil.c,-lcrypto))
$(eval $(call fuzz_rule,mqtt,archiver/mqtt.c common/timeutil.c common/err.c,-lssl -lcrypto))

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)
