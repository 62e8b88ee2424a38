# nodemesh: one Makefile for the whole set-up. `make demo` and `make test` work on a fresh
# Debian machine with Node 20, as root: they install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := clang llvm libbpf-dev libelf-dev bpftool iproute2 nftables tcpdump openssl util-linux procps \
  haproxy wrk nghttp2-client curl python3
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,bpf/build/%.bpf.o,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/include/*.h)
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
NODEMESH := node dist/installer/cli.js
# One sandbox per machine (fixed namespace names, one pin root): everything that brings one up
# (e2e tests, the bench, the demo) waits for this lock, so two checkouts never collide.
SANDBOX_LOCK := flock /run/lock/nodemesh-sandbox.lock

.PHONY: deps system-deps bpffs build bpf native ts demo test test-unit test-e2e clean local-down image-root

# --- set-up -------------------------------------------------------------------------------
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "nodemesh: missing Debian packages:$$missing; run make as root (or apt-get install them)" >&2; exit 1; fi; \
	  echo "nodemesh: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: system-deps node_modules/.package-lock.json

# The node daemon pins its maps and links on bpffs; a fresh machine may not have it mounted
# (a real node mounts it at boot, a DaemonSet gets it as a hostPath).
bpffs:
	@mountpoint -q /sys/fs/bpf || { echo "nodemesh: mounting bpffs at /sys/fs/bpf"; mount -t bpf bpf /sys/fs/bpf; }

# --- build --------------------------------------------------------------------------------
bpf/include/vmlinux.h:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

bpf/build/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) bpf/include/vmlinux.h
	@mkdir -p bpf/build
	clang -target bpf -D__TARGET_ARCH_$(ARCH) -g -O2 -Wall -Werror -Ibpf/include -c $< -o $@

# Test fixtures (test/fixtures/bpf/*.bpf.c) build next to the real objects, under bpf/build/fixtures.
BPF_FIXTURE_SRCS := $(wildcard test/fixtures/bpf/*.bpf.c)
BPF_FIXTURE_OBJS := $(patsubst test/fixtures/bpf/%.bpf.c,bpf/build/fixtures/%.bpf.o,$(BPF_FIXTURE_SRCS))

bpf/build/fixtures/%.bpf.o: test/fixtures/bpf/%.bpf.c $(BPF_HDRS) bpf/include/vmlinux.h
	@mkdir -p bpf/build/fixtures
	clang -target bpf -D__TARGET_ARCH_$(ARCH) -g -O2 -Wall -Werror -Ibpf/include -c $< -o $@

bpf: system-deps $(BPF_OBJS) $(BPF_FIXTURE_OBJS)

# Node's headers: Debian's nodejs has them under /usr, the official node images under /usr/local.
NODEDIR ?= $(abspath $(dir $(shell command -v node))..)

native/build/Release/nodemesh_native.node: native/binding.gyp $(wildcard native/src/*.cc native/src/*.h) node_modules/.package-lock.json
	cd native && ../node_modules/.bin/node-gyp rebuild --nodedir=$(NODEDIR) >/dev/null

native: system-deps native/build/Release/nodemesh_native.node

ts: node_modules/.package-lock.json
	node_modules/.bin/tsc -p .

build: deps bpf native ts

# --- run ----------------------------------------------------------------------------------
demo: build bpffs
	$(SANDBOX_LOCK) sh -c '$(NODEMESH) local up -f installer/examples/shop && $(NODEMESH) local demo'

local-down:
	$(NODEMESH) local down

# Side-by-side benchmark (root: it brings up and takes down its own sandbox cluster; ~8 min):
# no mesh vs sidecar (nodemesh) vs sidecar (HAProxy) vs ambient L4. Tables on stdout; JSON,
# Markdown and SVG charts in bench/results/. Options: make bench BENCH_ARGS='--seconds 5 --pods 2,10'
.PHONY: bench
bench: build bpffs
	$(SANDBOX_LOCK) $(NODEMESH) bench $(BENCH_ARGS)

# Unit tests need no privileges; e2e tests need root, eBPF and network namespaces and fail
# (never skip) when they are missing. One file at a time: they share the sandbox.
test: build bpffs
	node --test --test-concurrency=1 $$(find dist -name '*.test.js' -not -path 'dist/test/e2e/*' | sort)
	$(SANDBOX_LOCK) node --test --test-concurrency=1 --test-timeout=300000 $$(find dist/test/e2e -name '*.test.js' | sort)

test-unit: ts
	node --test $$(find dist -name '*.test.js' -not -path 'dist/test/e2e/*' | sort)

test-e2e: build bpffs
	$(SANDBOX_LOCK) node --test --test-concurrency=1 --test-timeout=300000 $$(find dist/test/e2e -name '*.test.js' | sort)

# --- image --------------------------------------------------------------------------------
# The tree the container image carries at /opt/nodemesh (IMAGE_ROOT in installer/manifests):
# what `make build` made, without tests, with production dependencies only
# (installer/image/stage.sh). The Dockerfile (installer/image/Dockerfile) copies it; the
# staged tree's own CLI brings up a whole sandbox from it, which is how it is tested here
# without a container runtime (test/e2e/image-root.test.ts).
IMAGE_ROOT_DIR ?= .nodemesh-image-root
image-root: build
	installer/image/stage.sh $(IMAGE_ROOT_DIR)

clean:
	rm -rf dist bpf/build native/build bpf/include/vmlinux.h .nodemesh-image-root
