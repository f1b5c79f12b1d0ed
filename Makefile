GO       ?= go
FUZZTIME ?= 10s
BIN      := bin/chronik-server
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/chronik-stream/chronik/internal/server.Version=$(VERSION)

.PHONY: all build run test deps lint test-unit test-e2e test-e2e-race fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/chronik-server

run:
	$(GO) run ./cmd/chronik-server start

## test: everything CI runs: installs test dependencies, vet/gofmt, unit
## tests with the race detector, end-to-end tests with real clients, and a
## short run of every fuzz target.
test: deps lint test-unit test-e2e fuzz

deps:
	./scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# the binaries also build for macOS and FreeBSD (storage falls back to plain writes there)
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/...
	GOOS=freebsd GOARCH=amd64 $(GO) build -o /dev/null ./cmd/...

test-unit:
	$(GO) test -race -count=1 -timeout 10m ./internal/... ./cmd/... ./test/cluster/netproxy/...

## test-e2e: the real binary with real clients (test/e2e) and clusters of
## real broker processes (test/cluster, whose harness builds the binary).
test-e2e:
	$(GO) test -count=1 -timeout 15m ./test/e2e/... ./test/cluster/...

## test-e2e-race: the end-to-end tests against a broker built with the race
## detector (a race makes its exit code non-zero, which fails the test that
## stops it). About 3 minutes here; not part of `make test`.
test-e2e-race:
	CHRONIK_E2E_RACE=1 $(GO) test -count=1 -timeout 20m ./test/e2e/... ./test/cluster/...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

clean:
	rm -rf bin
