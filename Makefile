# Thin entry points; the logic lives in scripts/ and the Go packages.
GO       ?= go
FUZZTIME ?= 30s
PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all build test vet fmt-check fuzz demo bench install clean

all: build

# Builds every command that exists under cmd/ into bin/.
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

# The whole suite as CI runs it: deps, gofmt, vet, go test -race, leftover mount/process check.
test:
	scripts/test.sh

# The reliability scenarios in their long form (S3FTP_SOAK=1): faults/ and ftpfront's hostile tests; prints
# scenarios, transfers, bytes lost and leaks (RELIABILITY.md). SOAK_ROUNDS=N repeats them.
soak:
	scripts/soak.sh

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

# MinIO on loopback + s3mount + ftpfront with a demo user (scripts/demo); flags via DEMO_ARGS="--check".
demo:
	scripts/setup-test-deps.sh
	$(GO) run ./scripts/demo $(DEMO_ARGS)

# Compares the mount with the raw SDK, s3fs and rclone (bench/README.md); flags via BENCH_ARGS="--quick".
bench:
	scripts/bench.sh $(BENCH_ARGS)

# Installs the binaries into $(PREFIX)/bin, the mount(8) helper as /sbin/mount.fuse.s3mount and the systemd
# units into /etc/systemd/system (not enabled).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin $(DESTDIR)/etc/systemd/system
	install -m 0755 bin/s3mount bin/ftpfront $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/mount.s3mount $(DESTDIR)/sbin/mount.fuse.s3mount
	install -m 0644 scripts/systemd/s3mount@.service scripts/systemd/ftpfront.service $(DESTDIR)/etc/systemd/system/

clean:
	rm -rf bin
