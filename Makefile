# ferry: build, test, run the demo, benchmark, fuzz. Every target works from a fresh clone.
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
FERRY_DEBUG := .build/debug/ferry
FERRY_RELEASE := .build/release/ferry

.PHONY: all build release test demo bench bench-config bench-chash bench-log fuzz install clean soak

all: build

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# Unit tests and integration tests (which run the real binary on loopback).
# The full log is kept in .build/test.log; on failure the failing assertions are repeated
# last, because CI shows only the tail of the output.
test: build
	@set -o pipefail; $(SWIFT) test 2>&1 | tee .build/test.log; rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	  echo "== failed tests (full log: .build/test.log) =="; \
	  grep -E ": error: |' failed \(" .build/test.log | tail -40; \
	fi; exit $$rc

# Three demo backends on 127.0.0.1:19001-19003 and ferry in front of them on 127.0.0.1:12000.
# Try it with: nc 127.0.0.1 12000   (Ctrl-C stops everything)
demo: build
	@set -e; pids=""; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	for i in 1 2 3; do python3 examples/demo/backend.py 1900$$i b$$i & pids="$$pids $$!"; done; \
	sleep 0.5; echo "ferry on 127.0.0.1:12000 -> b1,b2,b3; try: nc 127.0.0.1 12000"; \
	$(FERRY_DEBUG) -c examples/quickstart.conf

# Side-by-side benchmark against HAProxy, nginx and pen (when installed); writes BENCHMARKS.md.
bench: release
	python3 bench/run.py --ferry-bin $(FERRY_RELEASE)

# Relay message rate with and without 1,000 servers probed every second (bench/health-probe.py).
.PHONY: bench-health
bench-health: release
	python3 bench/health-probe.py --ferry-bin $(FERRY_RELEASE)

bench-config: release
	bash bench/config-load.sh
	@/usr/bin/time -f "ferry -t on the same file: %e s, %M KB max RSS" $(FERRY_RELEASE) -t -c bench/out/config-10k.conf 2>&1 | tail -1

# Consistent-hash ring: a full build and one server's weight change (bench/chash-rebuild.sh).
bench-chash:
	bash bench/chash-rebuild.sh

# How long a 10,000-server upstream holds the loop: reload, weight change, reload carrying weights.
.PHONY: bench-reload
bench-reload: release
	python3 bench/reload-cost.py --ferry-bin $(FERRY_RELEASE)

# Connection rate with and without a connection log (the cost of logging every session).
bench-log: release
	python3 bench/log-cost.py --ferry-bin $(FERRY_RELEASE)

# Chaos soak, not part of `make test`: ferry under kills, black holes, agent flaps, admin
# commands, reloads and floods for SOAK_SECONDS, with invariants checked (bench/soak.py).
SOAK_SECONDS ?= 300
soak: release
	SOAK_SECONDS=$(SOAK_SECONDS) python3 bench/soak.py --ferry-bin $(FERRY_RELEASE)

FUZZ_SECONDS ?= 60
fuzz:
	bash Fuzz/run.sh $(FUZZ_SECONDS)

install: release
	install -D -m 0755 $(FERRY_RELEASE) $(DESTDIR)$(PREFIX)/bin/ferry

clean:
	rm -rf .build
