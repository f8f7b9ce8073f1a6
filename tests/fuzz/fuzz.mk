# fuzz.mk - libFuzzer harnesses, included by the top-level Makefile.
#
# Each tests/fuzz/fuzz_<target>.c is linked with the real sources it tests,
# by clang with -fsanitize=fuzzer,address,undefined, into build/fuzz/.
# scripts/fuzz.sh (`make fuzz`) builds them with `make fuzz-build` and runs
# each for a bounded time. The same harnesses replay their corpora on every
# `make test` through tests/unit/test_fuzz_replay.c.

FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined

# fuzz_rule(target, sources, libraries)
define fuzz_rule
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/fuzz.h $(2)
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(CPPFLAGS) -Iplugin -Iarchiver $(FUZZ_CFLAGS) $(WARN) -o $$@ $$(filter %.c,$$^) $(3)
FUZZ_BINS += $(FUZZ_DIR)/fuzz_$(1)
endef

$(eval $(call fuzz_rule,envelope,common/envelope.c common/names.c,-ljansson))
$(eval $(call fuzz_rule,names,common/names.c,))

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)
