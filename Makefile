# goscope — build, test and run.  `make` builds build/goscope; `make test` is what CI runs.
#
# Variables: BUILD (output directory), SANITIZE=1 (ASan/UBSan build, used by `make asan`).

BUILD ?= build
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := x86

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS_BASE := -std=gnu11 -g -O2 $(WARN) -D_GNU_SOURCE -Iinclude -I. -Iagent -I$(BUILD)
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -O1
LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS ?=
CFLAGS += $(CFLAGS_BASE)
LDLIBS := -lbpf -lelf -lz -lsqlite3 -lcjson -lmicrohttpd -lcurl -lpthread -lm
LDFLAGS += $(LDFLAGS_SAN)

SYM_SRCS := $(sort $(wildcard symbolizer/*.c))
AGENT_SRCS := $(sort $(wildcard agent/*/*.c))
BPF_SRCS := $(sort $(wildcard bpf/*.bpf.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
INTEG_SRCS := $(sort $(wildcard tests/integration/*.c))
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))

SYM_OBJS := $(SYM_SRCS:%.c=$(BUILD)/obj/%.o)
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/obj/%.o)
AGENT_LIB_OBJS := $(filter-out $(BUILD)/obj/agent/cli/main.o,$(AGENT_OBJS))
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/%.skel.h)
HELPER_OBJS := $(HELPER_SRCS:%.c=$(BUILD)/obj/%.o)

GOSCOPE := $(BUILD)/goscope
UNIT_BIN := $(BUILD)/tests/unit
INTEG_BIN := $(BUILD)/tests/integration
SYMLIB := $(BUILD)/libgoscope-symbolizer.a

.SECONDARY:
.PHONY: asan-integration all deps test unit integration asan asan-test run clean fuzz bench format fuzz-replay \
	image image-test deploy-test
all: $(GOSCOPE)

deps:
	@bash deploy/deps.sh test

# ---- BPF: vmlinux.h, objects, skeletons ----
$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(BUILD)/vmlinux.h $(wildcard include/goscope/*.h)
	@mkdir -p $(@D)
	$(CLANG) -target bpf -g -O2 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Iinclude -I$(BUILD) \
		-c $< -o $(@:.bpf.o=.tmp.bpf.o)
	$(BPFTOOL) gen object $@ $(@:.bpf.o=.tmp.bpf.o)

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# ---- C objects (with header dependency tracking) ----
$(BUILD)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(SYMLIB): $(SYM_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(GOSCOPE): $(AGENT_OBJS) $(SYMLIB)
	$(CC) $(LDFLAGS) -o $@ $(AGENT_OBJS) $(SYMLIB) $(LDLIBS)

# ---- tests ----
# Both test binaries link tests/helpers/ (plain C: no Criterion, nothing run at load time).
$(UNIT_BIN): $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(HELPER_OBJS) $(AGENT_LIB_OBJS) $(SYMLIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion -lm

$(INTEG_BIN): $(INTEG_SRCS:%.c=$(BUILD)/obj/%.o) $(HELPER_OBJS) $(AGENT_LIB_OBJS) $(SYMLIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion -lm

unit: $(UNIT_BIN)
	$(UNIT_BIN) --jobs 2 --tap=$(BUILD)/unit.tap

# Suites that compare rates or shares with a measured noise floor, or check that no BPF program
# or probe is left on the host, run one test at a time. The others spend most of their time
# waiting (for captures, windows, servers, retries) and run two at a time: a fresh run takes
# ~7 min instead of ~21 (measured; a new suite goes in INTEG_SERIAL if it needs the machine to
# itself). The push tests' agents each expect to see only their own two programs (by name), so
# they run one at a time, beside the two-at-a-time group. All groups always run, so one failure
# does not hide another.
INTEG_SERIAL := block|block_session|probe_keeper|capture_core|cpu|cpu_hardening|cpu_session|labels|hardening|discover|sigbus
INTEG_ALONE := push
INTEG_ENV = GOSCOPE_SRC_DIR=$(CURDIR) GOSCOPE_BIN=$(CURDIR)/$(GOSCOPE) GOSCOPE_BUILD_DIR=$(CURDIR)/build
integration: $(INTEG_BIN) $(GOSCOPE)
	@rc=0; \
	echo "== integration: suites that wait, two tests at a time (and $(INTEG_ALONE) one at a time beside them)"; \
	rm -f $(BUILD)/integration-*.tap; \
	$(INTEG_ENV) $(INTEG_BIN) --jobs 1 --filter '@($(INTEG_ALONE))/*' \
		--tap=$(BUILD)/integration-alone.tap >$(BUILD)/integration-alone.log 2>&1 & alone=$$!; \
	$(INTEG_ENV) $(INTEG_BIN) --jobs 2 --filter '!($(INTEG_SERIAL)|$(INTEG_ALONE))/*' \
		--tap=$(BUILD)/integration-parallel.tap || rc=1; \
	wait $$alone || rc=1; \
	cat $(BUILD)/integration-alone.log; \
	echo "== integration: suites that need the machine to themselves, one test at a time"; \
	$(INTEG_ENV) $(INTEG_BIN) --jobs 1 --filter '@($(INTEG_SERIAL))/*' \
		--tap=$(BUILD)/integration-serial.tap || rc=1; \
	echo "== integration: failed tests"; $(call tap_failures,$(BUILD)/integration-*.tap); \
	exit $$rc

# The failed tests again, with their assertions, last (from Criterion's TAP reports): a CI log
# that keeps only its tail still names them (the live output interleaves the programs' own
# output with Criterion's).
tap_failures = cat $(1) 2>/dev/null | awk '/^not ok/ { p = 1; n++ } p { print } \
	/^  \.\.\.$$/ { p = 0 } END { if (!n) print "(none)" }'

# The sanitizer build lives in its own directory so both can coexist.
asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 all build/asan/tests/unit

asan-test: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp build/asan/tests/unit --jobs 2 \
		--tap=build/asan/unit.tap
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 fuzz-replay

# Every test: dependencies, both builds, unit tests (plain and sanitized), the image and deploy
# tests, integration tests. The image test (mostly downloads and a container build) runs in the
# background while the builds and the unit tests run, and is over before the integration tests,
# whose timing it would disturb; its log is printed when it ends.
test: deps
	@mkdir -p $(BUILD); rm -f $(BUILD)/unit.tap build/asan/unit.tap; \
	$(MAKE) --no-print-directory image-test >$(BUILD)/image-test.log 2>&1 & img=$$!; \
	rc=0; \
	{ $(MAKE) -j2 all $(UNIT_BIN) $(INTEG_BIN) && $(MAKE) unit && $(MAKE) asan-test && \
	  $(MAKE) deploy-test; } || rc=1; \
	wait $$img || rc=2; \
	echo "== image-test (ran in the background)"; cat $(BUILD)/image-test.log; \
	[ $$rc -ne 2 ] || echo "image-test FAILED"; \
	if [ $$rc -ne 0 ]; then echo "== unit: failed tests"; \
		$(call tap_failures,$(BUILD)/unit.tap build/asan/unit.tap); fi; \
	[ $$rc -eq 0 ]
	$(MAKE) integration

# The integration tests against the sanitized goscope (not part of `make test`: ASan makes
# goscope 2-3 times slower, beyond what the rate and timing suites allow, so those are left
# out): memory errors and leaks of goscope itself under real BPF, processes and stores.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp
asan-integration: asan
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 build/asan/tests/integration
	$(ASAN_ENV) GOSCOPE_SRC_DIR=$(CURDIR) GOSCOPE_BIN=$(CURDIR)/build/asan/goscope \
		GOSCOPE_BUILD_DIR=$(CURDIR)/build build/asan/tests/integration --jobs 2 \
		--filter '!($(INTEG_SERIAL)|$(INTEG_ALONE))/*' --tap=build/asan/integration.tap; \
		rc=$$?; echo "== asan-integration: failed tests"; \
		$(call tap_failures,build/asan/integration.tap); exit $$rc

# ---- container image and Kubernetes (deploy/) ----
# `make image`: goscope's image (deploy/Dockerfile) with podman; PODMAN_BUILD_FLAGS adds flags
# (the image test passes --pull=never). `make image-test` builds and runs it as the DaemonSet
# does (tests/image/image_test.sh); `make deploy-test` checks the manifests and the kubectl
# plugin (fast, no image).
IMAGE ?= goscope:latest
PODMAN_BUILD_FLAGS ?=
image:
	podman build $(PODMAN_BUILD_FLAGS) -f deploy/Dockerfile -t $(IMAGE) .

image-test:
	bash tests/image/image_test.sh

deploy-test: $(GOSCOPE)
	bash tests/image/manifest_test.sh
	GOSCOPE_BIN=$(CURDIR)/$(GOSCOPE) GOSCOPE_BUILD_DIR=$(CURDIR)/build bash tests/kubectl/plugin_test.sh

# The agent in the foreground, its store in ./goscope-data; it prints how to read the profiles.
run: deps all
	$(GOSCOPE) agent --data-dir $(CURDIR)/goscope-data

# ---- fuzzing (libFuzzer, clang) ----
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_DEPS := tests/fuzz/fuzz_common.h tests/unit/elfbuild.c tests/unit/elfbuild.h \
	tests/unit/pclnbuild.c tests/unit/pclnbuild.h \
	$(wildcard agent/goruntime/*.c agent/goruntime/*.h) agent/api/query.h \
	agent/kube/kube_impl.h agent/kube/kube.h
# The profile model and its decoder (for fuzz_pprof_decode) and the HTTP API's query parser
# (for fuzz_api_query) and the Kubernetes client's pod parsing (for fuzz_kube_watch) are linked
# into every target.
FUZZ_PROFILE_SRCS := agent/profile/profile.c agent/profile/pprof.c agent/profile/pprof_decode.c \
	agent/profile/gzip.c agent/api/query.c agent/store/query_time.c \
	agent/kube/kube_pod.c agent/kube/kube_table.c agent/kube/kube_lines.c
build/fuzz/%: tests/fuzz/%.c $(SYM_SRCS) $(FUZZ_DEPS) $(FUZZ_PROFILE_SRCS)
	@mkdir -p $(@D)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE -Iinclude \
		-I. -Iagent $< $(SYM_SRCS) $(FUZZ_PROFILE_SRCS) -o $@ -lpthread -lz -lcjson

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
		echo "== $$n ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$n tests/fuzz/corpus || exit 1; done

# Replays the committed seed corpus through every fuzz target's code under ASan/UBSan
# (a plain-C driver, so it also runs with gcc).
FUZZ_REPLAY := $(BUILD)/tests/fuzz-replay
$(FUZZ_REPLAY): tests/fuzz/replay.c $(FUZZ_SRCS) $(FUZZ_DEPS) $(SYMLIB) $(FUZZ_PROFILE_SRCS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(FUZZ_PROFILE_SRCS) $(SYMLIB) $(LDFLAGS) $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY)
	$(FUZZ_REPLAY) tests/fuzz/corpus

bench: all
	@bash tests/bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
