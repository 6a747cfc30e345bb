# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgswitch: the one entry point. `make` builds; `make test` sets up and passes the tests;
# `make demo` runs a blue-green release in network namespaces; `make bench` measures.
#
# SAN=1 builds user space with ASan/UBSan into build/san (the tests run that build).
# V=1 shows every command.

CLANG ?= clang
CC ?= gcc
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
PREFIX ?= /usr/local
DESTDIR ?=

ifeq ($(FUZZ),1)
# `make fuzz`: everything built by clang with libFuzzer's coverage into build/fuzz.
CC := clang
BUILD := build/fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
else ifeq ($(SAN),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# The tests' failure injection (libbgswitch's bgs_fault); never in a release build.
FAULTFLAGS := -DBGS_FAULT_INJECT
else
BUILD := build/rel
SANFLAGS :=
endif

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Deferred (=): on a fresh machine the compiler arrives with `make deps`, after this is read.
ARCH_INC = /usr/include/$(shell $(CLANG) -print-multiarch)
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Iuser/lib -I$(BUILD) \
	  $(SANFLAGS) $(FAULTFLAGS)
LDFLAGS += $(SANFLAGS)
LIBS := -lxdp -lbpf -lelf -lz -lmnl -ljson-c
BPF_CFLAGS = -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Iinclude -I$(ARCH_INC)

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

LIB_SRCS := $(wildcard user/lib/*.c)
LIB_OBJS := $(patsubst user/lib/%.c,$(BUILD)/lib/%.o,$(LIB_SRCS))
LIB := $(BUILD)/libbgswitch.a

BGCTL_SRCS := $(wildcard user/bgctl/*.c)
BGCTL := $(if $(BGCTL_SRCS),$(BUILD)/bgctl)

# bgagent: main.c is the daemon's entry; the rest is linked into its unit tests too.
AGENT_SRCS := $(wildcard user/bgagent/*.c)
AGENT_OBJS := $(patsubst user/bgagent/%.c,$(BUILD)/agent/%.o,$(AGENT_SRCS))
AGENT_CORE := $(filter-out $(BUILD)/agent/main.o,$(AGENT_OBJS))
AGENT_LIBS := -lcyaml -lyaml -lsystemd -lcurl -lmicrohttpd -ljson-c
BGAGENT := $(if $(AGENT_SRCS),$(BUILD)/bgagent)
BGS_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(patsubst tests/lib/%.c,$(BUILD)/tests/lib/%.o,$(TESTLIB_SRCS))
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

# Fuzz targets: fuzz/fuzz_NAME.c. `make test` replays each committed corpus (fuzz/corpus/NAME)
# through a sanitizer build (test_fuzz_NAME); `make fuzz` runs them under libFuzzer.
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_REPLAYS := $(patsubst fuzz/fuzz_%.c,$(BUILD)/tests/test_fuzz_%,$(FUZZ_SRCS))
FUZZERS := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60

BENCH_BPF_SRCS := $(wildcard bench/*.bpf.c)
BENCH_SKELS := $(patsubst bench/%.bpf.c,$(BUILD)/bench/%.skel.h,$(BENCH_BPF_SRCS))
BENCH_SRCS := $(filter-out $(BENCH_BPF_SRCS),$(wildcard bench/*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

HDRS := $(wildcard include/*.h user/lib/*.h)

# The soak scenarios' traffic generator (vm-tests/loadgen.c), in every build.
LOADGEN := $(BUILD)/tools/loadgen

.PHONY: all deps test test-build unit vm-tests demo bench bench-agent bench-fwd bench-scale \
	bench-plots fuzz soak vm-test-6.1 install clean
.DELETE_ON_ERROR:
.SECONDARY:

all: $(SKELS) $(if $(LIB_SRCS),$(LIB)) $(BGCTL) $(BGAGENT) $(LOADGEN)

deps:
	$(Q)scripts/deps.sh

# A BPF object includes no glibc header, directly or through a uapi header: with -target bpf
# glibc selects its 32-bit stubs (gnu/stubs-32.h), which only libc6-dev-i386 ships. The
# dependency list clang writes (-MD) proves it on every build; the kernel's uapi headers
# (asm/ under the multiarch directory included) are fine.
define bpf_compile
	$(Q)$(CLANG) $(BPF_CFLAGS) -MD -MF $@.d -c $< -o $@
	$(Q)if grep -q '/features\.h' $@.d; then \
		echo "$<: a BPF object must not include glibc headers (features.h is in its" \
		     "dependency list, $@.d); use uapi headers that stand alone" >&2; \
		rm -f $@; exit 1; fi
endef

# The BPF side: objects, then skeletons that embed them.
$(BUILD)/%.bpf.o: bpf/%.bpf.c $(HDRS) $(wildcard bpf/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(bpf_compile)

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(BUILD)/lib/%.o: user/lib/%.c $(HDRS) $(SKELS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/bgctl: $(BGCTL_SRCS) $(wildcard user/bgctl/*.h) $(LIB) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgctl $(BGCTL_SRCS) $(LIB) -o $@ $(LDFLAGS) $(LIBS)

$(BUILD)/agent/%.o: user/bgagent/%.c $(wildcard user/bgagent/*.h) $(HDRS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgagent -DBGS_VERSION='"$(BGS_VERSION)"' -c $< -o $@

$(BUILD)/bgagent: $(AGENT_OBJS) $(LIB)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(AGENT_OBJS) $(LIB) -o $@ $(LDFLAGS) $(LIBS) $(AGENT_LIBS)

# Tests: each tests/test_*.c is one binary, linked with tests/lib/*.c and libbgswitch.
$(BUILD)/tests/lib/%.o: tests/lib/%.c $(wildcard tests/lib/*.h) $(HDRS) $(SKELS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(TESTLIB_OBJS) $(LIB) $(wildcard tests/lib/*.h) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib $< $(TESTLIB_OBJS) $(LIB) -o $@ $(LDFLAGS) $(LIBS) -lpthread -lm

# (fuzz targets may call the agent's code, e.g. its config loader)
$(BUILD)/tests/test_fuzz_%: fuzz/fuzz_%.c fuzz/replay.c $(AGENT_CORE) $(LIB) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgagent -DFUZZ_NAME='"fuzz_$*"' -DFUZZ_CORPUS='"fuzz/corpus/$*"' \
		$< fuzz/replay.c $(AGENT_CORE) $(LIB) -o $@ $(LDFLAGS) $(LIBS) $(AGENT_LIBS) -lpthread

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(AGENT_CORE) $(LIB) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgagent -fsanitize=fuzzer $< $(AGENT_CORE) $(LIB) -o $@ $(LIBS) \
		$(AGENT_LIBS) -lpthread

# fuzz_cli runs bgctl's own main (as bgctl_main) with every reach for state wrapped (see
# fuzz/fuzz_cli.c): parse-only by construction.
CLI_FUZZ_OBJS = $(patsubst user/bgctl/%.c,$(BUILD)/fuzzcli/%.o,$(BGCTL_SRCS))
CLI_FUZZ_WRAP := -Wl,--wrap=exit,--wrap=fopen,--wrap=bgs_open,--wrap=bgs_init,--wrap=bgs_history_open
# clang 14 counts bgctl's `{ NULL }` table ends as missing initializers; gcc does not
CLI_FUZZ_CFLAGS := $(if $(filter 1,$(FUZZ)),-Wno-missing-field-initializers)

$(BUILD)/fuzzcli/%.o: user/bgctl/%.c $(wildcard user/bgctl/*.h) $(HDRS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(CLI_FUZZ_CFLAGS) -Iuser/bgctl -Dmain=bgctl_main -c $< -o $@

$(BUILD)/tests/test_fuzz_cli: fuzz/fuzz_cli.c fuzz/replay.c $(CLI_FUZZ_OBJS) $(LIB) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgctl -DFUZZ_NAME='"fuzz_cli"' -DFUZZ_CORPUS='"fuzz/corpus/cli"' \
		fuzz/fuzz_cli.c fuzz/replay.c $(CLI_FUZZ_OBJS) $(LIB) -o $@ $(LDFLAGS) $(CLI_FUZZ_WRAP) \
		$(LIBS)

build/fuzz/fuzz_cli: fuzz/fuzz_cli.c $(CLI_FUZZ_OBJS) $(LIB) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) -Iuser/bgctl -fsanitize=fuzzer $< $(CLI_FUZZ_OBJS) $(LIB) -o $@ \
		$(CLI_FUZZ_WRAP) $(LIBS)

# bgagent's unit tests link the agent's code (all but its main).
$(BUILD)/tests/test_agent_%: tests/test_agent_%.c $(AGENT_CORE) $(TESTLIB_OBJS) $(LIB) \
		$(wildcard tests/lib/*.h user/bgagent/*.h) $(HDRS)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -Iuser/bgagent $< $(AGENT_CORE) $(TESTLIB_OBJS) $(LIB) -o $@ \
		$(LDFLAGS) $(LIBS) $(AGENT_LIBS) -lpthread -lm

# Benchmarks: bench/*.bpf.c are baselines with their own skeletons.
$(BUILD)/bench/%.bpf.o: bench/%.bpf.c $(HDRS) $(wildcard bench/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(bpf_compile)

$(BUILD)/bench/%.skel.h: $(BUILD)/bench/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(BUILD)/bench/%: bench/%.c $(BENCH_SKELS) $(TESTLIB_OBJS) $(LIB) $(HDRS) $(wildcard bench/*.h)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -I$(BUILD)/bench -Itests/lib $< $(TESTLIB_OBJS) $(LIB) -o $@ $(LDFLAGS) $(LIBS) -lpthread -lm

$(LOADGEN): vm-tests/loadgen.c | $(BUILD)
	$(call msg,CCLD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -ljson-c

$(BUILD):
	$(Q)mkdir -p $@

test-build: $(LIB) $(BGCTL) $(BGAGENT) $(LOADGEN) $(TESTS) $(FUZZ_REPLAYS)

# Sets up a fresh machine and passes every suite; the last line is "N passed, N failed".
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 test-build
	$(Q)tests/run.sh build/san build/rel

# The suite again on Debian 12's stock kernel (6.1) in qemu VMs (vm/run.sh): in parts, one
# bounded VM each, one after another, the results summed (VM_ARGS=--smoke: the short subset
# CI runs; VM_ARGS="--part NAME": one part, vm/run.sh --list names them).
vm-test-6.1: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 test-build
	$(Q)vm/run.sh $(VM_ARGS)

# Each fuzz target for FUZZ_SECONDS under libFuzzer, from its committed corpus; what it finds
# new goes to build/fuzz/corpus-NAME (copy what is worth keeping into fuzz/corpus/NAME).
fuzz: deps
	$(Q)$(MAKE) --no-print-directory FUZZ=1 $(FUZZERS)
	$(Q)for f in $(FUZZERS); do n=$${f#build/fuzz/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
		echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			build/fuzz/corpus-$$n fuzz/corpus/$$n || exit 1; done

# The soak scenarios at full scale (docs/soak.md): each under load from vm-tests/loadgen,
# bounded (SOAK_TIMEOUT each, under 15 minutes in all here). `make test` runs them short.
SOAK_TIMEOUT ?= 600
soak: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)p=0; f=0; s=0; for sc in vm-tests/test_soak_*.sh vm-tests/test_hostile*.sh; do \
		echo "== $$sc"; SOAK_SCALE=full BGS_BUILD=$(CURDIR)/build/rel \
			timeout --kill-after=10 $(SOAK_TIMEOUT) bash $$sc; rc=$$?; \
		case $$rc in 0) p=$$((p + 1)); echo "ok $$sc";; 249) s=$$((s + 1)); echo "skip $$sc";; \
		*) f=$$((f + 1)); echo "FAIL $$sc (exit $$rc)";; esac; done; \
		echo "$$p passed, $$f failed, $$s skipped"; [ $$f -eq 0 ]

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCHES)
	$(Q)bench/run.sh build/rel

# bgagent's idle CPU: 100 services x 2 colors x 8 backends, HTTP checks every second.
bench-agent: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory build/rel/bench/http_floor
	$(Q)bench/agent_idle.sh build/rel

# Forwarding on veth, one LB core: bgswitch next to nftables DNAT and a minimal XDP program,
# then a flip under load (bench/fwd.sh; raw results in docs/bench-data, see docs/benchmarks.md).
bench-fwd: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCHES)
	$(Q)bench/fwd.sh build/rel docs/bench-data

# Scale: conntrack memory, counting and ending 1,000,000 flows, inserts, 1,000 services.
bench-scale: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCHES)
	$(Q)bench/scale.sh build/rel docs/bench-data

# The PNG plots of docs/benchmarks.md, from the committed raw results (gnuplot).
bench-plots: deps
	$(Q)bench/plots.sh docs/bench-data docs

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh build/rel

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0755 build/rel/bgctl $(DESTDIR)$(PREFIX)/sbin/bgctl
	[ ! -f docs/bgctl.8 ] || install -m 0644 docs/bgctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	[ ! -f scripts/bgctl.bash-completion ] || install -D -m 0644 scripts/bgctl.bash-completion \
		$(DESTDIR)/usr/share/bash-completion/completions/bgctl
	install -m 0755 build/rel/bgagent $(DESTDIR)$(PREFIX)/sbin/bgagent
	install -d $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)/etc/bgswitch
	install -m 0644 docs/bgagent.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 docs/bgswitch.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	sed 's|/usr/local/sbin|$(PREFIX)/sbin|g' scripts/bgagent.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/bgagent.service
	install -m 0644 scripts/bgswitch.yaml.example $(DESTDIR)/etc/bgswitch/bgswitch.yaml.example
	install -D -m 0644 docs/grafana-bgswitch.json \
		$(DESTDIR)$(PREFIX)/share/bgswitch/grafana-bgswitch.json

clean:
	rm -rf build
