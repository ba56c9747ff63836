# Thin entry points; the logic lives in scripts/.
GO       ?= go
FUZZTIME ?= 1m

.PHONY: all build test soak vet fmt-check fuzz bench demo install clean

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

# Runs each Fuzz* target of each package for $(FUZZTIME) (the targets are found in the test sources, so only
# packages that have one are compiled).
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go); do \
			[ "$$f" = func ] && continue; \
			echo "fuzz $$dir $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir; \
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

# Installs the daemons, the mount helper (mount -t s3mount and -t fuse.s3mount), the systemd units and the example
# configurations as *.example (real configuration files are never touched). DESTDIR stages the tree; the units'
# paths follow BINDIR.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= /usr/sbin
UNITDIR ?= /etc/systemd/system
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/s3mount $(DESTDIR)/etc/ftpfront
	install -m 0755 bin/s3mount bin/ftpfront $(DESTDIR)$(BINDIR)/
	install -m 0755 scripts/mount.s3mount $(DESTDIR)$(SBINDIR)/mount.s3mount
	ln -sf mount.s3mount $(DESTDIR)$(SBINDIR)/mount.fuse.s3mount
	for u in s3mount@.service ftpfront.service; do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' scripts/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 scripts/s3mount.conf.example $(DESTDIR)/etc/s3mount/s3mount.conf.example
	install -m 0644 scripts/ftpfront.conf.example $(DESTDIR)/etc/ftpfront/ftpfront.conf.example
	install -m 0644 scripts/ftpfront-users.example.yaml $(DESTDIR)/etc/ftpfront/users.yaml.example
	@echo "installed; next: see the comments in $(UNITDIR)/ftpfront.service, then systemctl daemon-reload"

clean:
	rm -rf bin
