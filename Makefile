# lodestar — the two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need with apt-get when it is missing (run as root on Debian).

SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/root/go/bin
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/lodestar

# Debian packages the tests and the demo use, as "command:package" pairs: a package is
# installed only when its command is missing.
TEST_TOOLS := curl:curl haproxy:haproxy /usr/share/java/zookeeper.jar:zookeeper java:default-jre-headless \
              named:bind9 dig:dnsutils chromium:chromium nft:nftables
BENCH_TOOLS := dnsperf:dnsperf wrk:wrk
DEMO_TOOLS := curl:curl haproxy:haproxy dig:dnsutils

.PHONY: all build test lab image-test soak scale-live demo bench bench-dns bench-forward bench-scale deps-test deps-demo check-go vet fmt-check staticcheck clean

all: build

build: check-go
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lodestar

check-go:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 is needed: install it from https://go.dev/dl/ into /usr/local/go (Debian's golang package is too old)"; exit 1; }

deps-test:
	@scripts/apt-install.sh $(TEST_TOOLS)

deps-demo:
	@scripts/apt-install.sh $(DEMO_TOOLS)

vet: check-go
	$(GO) vet ./...

fmt-check: check-go
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# staticcheck at a pinned version (a new release can add checks that fail a clean tree);
# staticcheck.conf says which checks are off and why.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH 2>/dev/null)/bin/staticcheck
staticcheck: check-go
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -q '($(STATICCHECK_VERSION:v%=%))'; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) with go install"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); fi
	"$(STATICCHECK)" ./...

# make test: every test, with the race detector, after vet, a gofmt check and staticcheck.
# LODESTAR_IMAGE_TEST=1 make test also runs make image-test after the Go tests.
test: check-go deps-test vet fmt-check staticcheck
	scripts/gotest.sh -race -count=1 -timeout 20m ./...
	@if [ "$${LODESTAR_IMAGE_TEST:-}" = 1 ]; then $(MAKE) --no-print-directory image-test; fi

# make image-test: the Dockerfile built with podman from local images (a debootstrapped Debian
# and the host's Go; no registry, no Docker engine) and the image run on loopback ports:
# /readyz and a request through its HAProxy checked. As root it installs podman, runc and
# debootstrap with apt-get; its state is under /var/tmp/lodestar-image-test.
image-test: check-go
	timeout 20m scripts/image-test.sh

# make lab: only the multi-host lab (integration/lab; docs/lab.md), which make test runs too:
# hosts as network namespaces (root needed), the systemd render of examples like it run in
# them, faults made inside one namespace; prints "lab figure:" lines (detection, recovery).
lab: check-go deps-test
	set -o pipefail; $(GO) test -race -count=1 -v -run '^TestLab' ./integration/lab/ | grep -vE '^=== (RUN|PAUSE|CONT|NAME)'

# make soak [SOAK_DURATION=10m]: lodestar and HAProxy under churn, reloads, load and HAProxy
# kills (integration/soak_test.go, build tag soak, so not part of make test); prints a summary
# and fails on requests lost outside the kill windows, growth, or a log growing 1 KB/s or more.
SOAK_DURATION ?= 10m
SOAK_KILL_EVERY ?= 2m
soak: check-go deps-test
	$(GO) test -tags soak -count=1 -timeout 0 -run '^TestSoak$$' -v ./integration/ \
		-args -soak.duration=$(SOAK_DURATION) -soak.kill-every=$(SOAK_KILL_EVERY)

# make scale-live: the most apps × 3 tasks this machine's open-files limit lets HAProxy serve
# (integration/scale_live_test.go, build tag scale, so not part of make test), then apps added
# one at a time under load: event-to-traffic p50/p99 on a "scale-live:" line; fails on a failed
# request to an existing app or a new app never routed.
scale-live: check-go deps-test
	$(GO) test -tags scale -count=1 -timeout 60m -run '^TestScaleLiveNewAppToTraffic$$' -v ./integration/

# make demo: lodestar on the example cluster (apps and Mesos state from files in examples/).
demo: build deps-demo
	$(GO) build -o bin/demo-backend ./cmd/demo-backend
	@scripts/demo.sh $(BIN) bin/demo-backend

# make bench: the Go benchmarks (figures for closing notes; nothing here asserts a time).
bench: check-go
	$(GO) test -run '^$$' -bench . -benchmem ./...

# make bench-dns: dnsperf against lodestar serving a generated 10,200-task Mesos state, then
# the time to the first answer and the peak RSS with a 100,200-task state.
bench-dns: build
	@scripts/apt-install.sh $(BENCH_TOOLS)
	scripts/bench-dns.sh $(BIN)
	scripts/bench-ingest.sh $(BIN)

# make bench-forward: dnsperf of forwarding to a local bind9, against bind9 asked directly, of
# the cache, and of the zone, in one run (OLD=path/to/lodestar adds an older binary's forwarding).
bench-forward: build
	@scripts/apt-install.sh dnsperf:dnsperf named:bind9 dig:bind9-dnsutils
	scripts/bench-forward.sh $(BIN)

# make bench-scale: lodestar's HAProxy configuration at 1,000 and 10,000 apps × 3 tasks, its
# server lines, `haproxy -c` time and peak RSS; MARATHON_LB_DIR=path/to/marathon-lb adds
# marathon-lb's configuration for the same apps beside it (scripts/bench-scale.sh says more).
bench-scale: check-go
	scripts/bench-scale.sh

clean:
	rm -rf bin
