# Thin entry points; the logic lives in scripts/.
GO       ?= go
FUZZTIME ?= 30s

.PHONY: all build test vet fmt-check fuzz bench demo clean

all: build

# Builds every command that exists under cmd/ into bin/.
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

# The whole suite as CI runs it: deps, gofmt, vet, go test -race, leftover mount/process check.
test:
	scripts/test.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(find . -name '*.go' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Runs each Fuzz* target of each package for $(FUZZTIME).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Benchmarks (bench/ is the whole-system comparison); pass flags with BENCH_ARGS="--quick".
bench:
	scripts/bench.sh $(BENCH_ARGS)

# MinIO, s3mount and ftpfront on loopback with a demo user (scripts/demo); Ctrl-C stops everything and unmounts.
# DEMO_ARGS="--check" runs the walk-through itself; DEMO_ARGS="--bucket NAME --region R" uses real S3.
demo:
	@mkdir -p bin
	$(GO) build -o bin/s3ftp-demo ./scripts/demo
	bin/s3ftp-demo $(DEMO_ARGS)

clean:
	rm -rf bin
