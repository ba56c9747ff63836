#!/usr/bin/env bash
# test.sh runs the whole test suite the way CI does:
#   - one run at a time on this machine (flock on /tmp/s3ftp-test.lock);
#   - installs missing test dependencies (scripts/setup-test-deps.sh);
#   - gofmt check, go vet, go test -race -count=1 over ./... with a dedicated TMPDIR, so that every temp dir,
#     MinIO data dir and mount point a test makes lives under one root;
#   - afterwards kills processes still referring to that root (MinIO, daemons started by tests), lazily
#     unmounts FUSE mounts the run left behind, and FAILS if there were any;
#   - the full go test output goes to a log file; the terminal gets failing tests' output and go test's
#     ok/FAIL line per package, last.
# Extra arguments are passed to go test (e.g. scripts/test.sh -run TestX ./cache/...); default ./...
set -euo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$self")/.."

say() { echo "test.sh: $*" >&2; }

# Re-run this script under flock -o: the lock is held by flock itself, never inherited by a test's daemon that
# might outlive the run and keep the next run waiting.
lock=/tmp/s3ftp-test.lock
if [ -z "${S3FTP_TEST_LOCKED:-}" ]; then
	flock -n "$lock" true || say "another test run holds $lock; waiting"
	S3FTP_TEST_LOCKED=1 exec flock -o "$lock" "$self" "$@"
fi
unset S3FTP_TEST_LOCKED

scripts/setup-test-deps.sh

run_tmp=$(mktemp -d /tmp/s3ftp-test.XXXXXX)
# Like /tmp: tests that run helpers as another user (nobody) must be able to reach their own temp dirs.
chmod 1777 "$run_tmp"
log_dir=/tmp/s3ftp-test-logs
mkdir -p "$log_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="$log_dir/go-test-$stamp.log"
json="$log_dir/go-test-$stamp.json"

# run_mounts prints the FUSE mount points under the run's temp root, one per line (octal escapes of
# /proc/self/mounts decoded). Mounts elsewhere belong to someone else (another user's daemon, a benchmark)
# and are never touched; tests make their mount points with t.TempDir, which is under the root.
run_mounts() {
	awk '$3 ~ /^fuse/ && $3 != "fusectl" { print $2 }' /proc/self/mounts | while IFS= read -r m; do
		m=$(printf '%b' "$m")
		case "$m" in "$run_tmp"/*) echo "$m" ;; esac
	done
}

leftovers=0
cleanup_done=0
cleanup() {
	((cleanup_done)) && return
	cleanup_done=1
	# Processes started by tests that are still alive: their command line names the run's temp root.
	local pids=() pid
	for pid in $(pgrep -f -- "$run_tmp" || true); do
		[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || pids+=("$pid")
	done
	if ((${#pids[@]})); then
		say "killing processes left by tests:"
		ps -o pid=,args= -p "${pids[@]}" >&2 || true
		kill -TERM "${pids[@]}" 2>/dev/null || true
		sleep 1
		kill -KILL "${pids[@]}" 2>/dev/null || true
		leftovers=1
	fi
	# FUSE mounts the run left behind, deepest first.
	local m
	while IFS= read -r m; do
		[ -n "$m" ] || continue
		say "LEFTOVER MOUNT: $m (unmounting lazily)"
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
		leftovers=1
	done < <(run_mounts | sort -r)
	# --one-file-system: never descend into a mount that survived, it could be a live bucket.
	rm -rf --one-file-system "$run_tmp" 2>/dev/null || say "could not remove all of $run_tmp"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

failed=()

say "gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -not -path './.demo/*' -print0 | xargs -0 -r gofmt -l)
if [ -n "$unformatted" ]; then
	say "gofmt: these files need formatting:"
	echo "$unformatted" >&2
	failed+=(gofmt)
fi

say "go vet"
if ! go vet ./... 2>&1; then
	failed+=(vet)
fi

args=("$@")
((${#args[@]})) || args=(./...)
say "go test -race -count=1 -timeout 40m ${args[*]} (TMPDIR=$run_tmp; log: $log)"
set +e
TMPDIR="$run_tmp" go test -race -count=1 -timeout 40m -json "${args[@]}" >"$json" 2>"$log.stderr"
test_rc=$?
set -e
python3 - "$json" "$log" <<'PY'
import json, sys
events, log_path = sys.argv[1], sys.argv[2]
tests = {}      # (pkg, test) -> output lines
pkgout = {}     # pkg -> package-level output lines
order = []      # packages in order of completion
failures = []   # output blocks of failed tests and builds
with open(events) as f, open(log_path, "w") as log:
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:
            log.write(line)
            failures.append(line.rstrip("\n"))
            continue
        action, pkg, test = e.get("Action"), e.get("Package", e.get("ImportPath", "")), e.get("Test")
        out = e.get("Output", "")
        if out:
            log.write(out)
        if action == "build-output":
            failures.append(out.rstrip("\n"))
        elif action == "output":
            if test:
                tests.setdefault((pkg, test), []).append(out)
            else:
                pkgout.setdefault(pkg, []).append(out)
        elif action in ("pass", "fail", "skip") and test:
            lines = tests.pop((pkg, test), [])
            if action == "fail":
                failures.append("".join(lines).rstrip("\n"))
            elif action == "skip":
                failures.append("".join(l for l in lines if l.lstrip().startswith("---") or "skip" in l.lower()).rstrip("\n"))
        elif action in ("pass", "fail", "skip") and not test:
            order.append((pkg, action))
    # Tests that never finished (a panic or timeout in the binary) still have buffered output.
    for (pkg, test), lines in tests.items():
        failures.append("".join(lines).rstrip("\n"))
for block in failures:
    if block:
        print(block)
for pkg, action in order:
    lines = pkgout.get(pkg, [])
    if action == "fail":
        body = [l for l in lines if not l.startswith(("ok ", "PASS", "=== "))]
        sys.stdout.write("".join(body))
    else:
        sys.stdout.write("".join(l for l in lines if l.startswith(("ok ", "?   ", "ok\t", "?\t"))))
PY
if [ -s "$log.stderr" ]; then
	cat "$log.stderr" >&2
	cat "$log.stderr" >>"$log"
fi
rm -f "$log.stderr" "$json"
((test_rc == 0)) || failed+=(test)

cleanup
((leftovers == 0)) || failed+=(leftovers)

if ((${#failed[@]})); then
	say "FAIL (${failed[*]}); full output: $log"
	exit 1
fi
say "PASS; full output: $log"
