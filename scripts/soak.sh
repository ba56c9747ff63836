#!/usr/bin/env bash
# soak.sh runs the reliability scenarios in their long form (S3FTP_SOAK=1) and prints a summary:
#   - faults/: toxiproxy reset/timeout and a MinIO restart during large uploads, reads and listings; a slow
#     network; SIGKILL of the daemon mid-upload; ftpfront over a killed daemon's mount; 50 writers × 1 GiB and
#     50 readers × 1 GiB through one mount (MinIO needs about 62 GiB free in TMPDIR's file system;
#     S3FTP_LOAD="WxSIZE,RxSIZE" changes the load; see RELIABILITY.md);
#   - ftpfront/ TestHostile*: hostile clients and 200 concurrent FTPS sessions.
# Each test appends "scenario=... status=... transfers=N bytes_lost=N leaks=N [orphan_uploads=N]
# [auto_unmount_ms=N] [refused_451=N] [guard_check_ns=N]" to the file named by S3FTP_SUMMARY; this script totals the lines. It fails when a test failed, a byte was lost, a leak was
# counted, or a FUSE mount was left behind.
# Without -race: the long form measures the system; make test runs the short form with -race.
# Environment: SOAK_ROUNDS=N repeats every scenario N times (default 1); SOAK_RUN overrides the test pattern;
# SOAK_SKIP, when set, is passed to go test -skip (e.g. SOAK_SKIP=TestConcurrentWritersAndReaders leaves out the
# 50 × 1 GiB load, which needs about 62 GiB of disk and half an hour).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "soak.sh: $*" >&2; }

exec 9>/tmp/s3ftp-test.lock
if ! flock -n 9; then
	say "a test run holds /tmp/s3ftp-test.lock; waiting"
	flock 9
fi
scripts/setup-test-deps.sh

rounds=${SOAK_ROUNDS:-1}
run=${SOAK_RUN:-'^(TestFaultDuringUpload|TestSlowNetworkTransfersIntact|TestKill9MidUpload|TestFTPRefusesWhileMountDown|TestReadResumesCutGET|TestConcurrentWritersAndReaders|TestHostile.*)$'}
run_tmp=$(mktemp -d /tmp/s3ftp-soak.XXXXXX)
chmod 1777 "$run_tmp"
summary_file="$run_tmp/summary.txt"
log_dir=/tmp/s3ftp-test-logs
mkdir -p "$log_dir"
log="$log_dir/soak-$(date -u +%Y%m%dT%H%M%SZ).log"
: >"$summary_file"

left_mounts=0
cleanup() {
	local m
	while IFS= read -r m; do
		[ -n "$m" ] || continue
		say "LEFTOVER MOUNT: $m (unmounting lazily)"
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		left_mounts=$((left_mounts + 1))
	done < <(awk '$3 ~ /^fuse/ && $3 != "fusectl" { print $2 }' /proc/self/mounts | while IFS= read -r m; do
		m=$(printf '%b' "$m")
		case "$m" in "$run_tmp"/*) echo "$m" ;; esac
	done | sort -r)
}

skip=()
[ -n "${SOAK_SKIP:-}" ] && skip=(-skip "$SOAK_SKIP")
say "go test -count=$rounds -run '$run' ${skip[*]} ./faults ./ftpfront (S3FTP_SOAK=1; log: $log)"
set +e
S3FTP_SOAK=1 S3FTP_SUMMARY="$summary_file" TMPDIR="$run_tmp" \
	go test -count="$rounds" -timeout 180m -v -run "$run" "${skip[@]}" ./faults ./ftpfront >"$log" 2>&1
rc=$?
set -e
grep -E '^(--- (PASS|FAIL)|ok |FAIL|panic:)|daemon peak RSS|readers × |CPU during the load|multipart uploads left|wrote [0-9]+ MiB|sessions: goroutines|attempts over|left the mount table|refused with 451' "$log" || true
cleanup

set +e
awk -v rc="$rc" -v mounts="$left_mounts" '
{
	for (i = 1; i <= NF; i++) {
		split($i, kv, "=")
		v[kv[1]] = kv[2]
	}
	scenarios++
	if (v["status"] != "pass") failed++
	transfers += v["transfers"]; lost += v["bytes_lost"]; leaks += v["leaks"]
	if ("orphan_uploads" in v && v["orphan_uploads"] > 0) orphans += v["orphan_uploads"]
	# -1: not measured (the mount was not removed by itself; that test failed and counted a leak).
	if ("auto_unmount_ms" in v && v["auto_unmount_ms"] >= 0) {
		ms = v["auto_unmount_ms"] + 0
		if (unmounts == 0 || ms < ms_min) ms_min = ms
		if (unmounts == 0 || ms > ms_max) ms_max = ms
		ms_all = ms_all (unmounts ? " " : "") ms
		unmounts++
	}
	if ("refused_451" in v) refused += v["refused_451"]
	if ("guard_check_ns" in v && v["guard_check_ns"] > 0) { guard_ns += v["guard_check_ns"]; guards++ }
	delete v
}
END {
	leaks += mounts
	printf "scenarios run: %d (failed: %d)\n", scenarios, failed
	printf "transfers attempted: %d\n", transfers
	printf "bytes lost = %d\n", lost
	printf "leaks = %d (left-over multipart uploads, mounts, goroutines, descriptors)\n", leaks
	printf "multipart uploads of a SIGKILLed daemon left after its restart = %d (want 0: the next start aborts them from its journal)\n", orphans
	if (unmounts > 0)
		printf "dead mount removed after SIGKILL (auto_unmount_ms): min %d, max %d ms over %d runs (%s)\n", ms_min, ms_max, unmounts, ms_all
	if (refused > 0)
		printf "FTP commands refused with 451 while the mount was down = %d\n", refused
	if (guards > 0)
		printf "ftpfront mount guard check on a live mount: %.1f us per file operation (mean of %d runs)\n", guard_ns / guards / 1000, guards
	printf "go test exit status: %d\n", rc
	exit (rc != 0 || failed > 0 || lost > 0 || leaks > 0 || scenarios == 0) ? 1 : 0
}' "$summary_file"
status=$?
say "summary lines: $(wc -l <"$summary_file"); full output: $log"
rm -rf --one-file-system "$run_tmp" 2>/dev/null || true
exit $status
