#!/usr/bin/env bash
# bench.sh: install what the benchmark compares against, then run it.
#
#   scripts/bench.sh [--quick] [--size N] [--reps N] [--out DIR] [--tools LIST] ...
#
# Arguments go to `go run ./bench` unchanged (see bench/README.md). Needs root: the bench drops the page cache,
# mounts tmpfs scratch file systems and FUSE mounts. One run at a time (a lock file guards it); mounts left by an
# earlier run that was killed are removed first.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "bench.sh: must run as root (drop_caches, tmpfs and FUSE mounts)" >&2
	exit 1
fi

exec 9>/tmp/s3ftp-bench.lock
if ! flock -n 9; then
	echo "bench.sh: another benchmark run holds /tmp/s3ftp-bench.lock" >&2
	exit 1
fi

# Tools compared and used by the bench, installed from Debian when missing.
missing=()
# sshd is looked for where the bench runs it (/usr/sbin is not always on root's PATH); sftp and ssh-keygen drive
# and key the SSH tools, sshpass is there for password logins.
for pair in s3fs:s3fs rclone:rclone gnuplot:gnuplot-nox curl:curl fusermount3:fuse3 /usr/sbin/sshd:openssh-server \
	sftp:openssh-client ssh-keygen:openssh-client sshpass:sshpass; do
	cmd=${pair%%:*} pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! " ${missing[*]} " == *" $pkg "* ]]; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]})); then
	echo "bench.sh: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# MinIO: built by the test set-up script when no binary is found where internal/miniolocal looks.
have_minio() {
	[[ -n ${S3FTP_MINIO:-} && -x ${S3FTP_MINIO} ]] || command -v minio >/dev/null 2>&1 ||
		[[ -x "$(go env GOPATH)/bin/minio" || -x /root/go/bin/minio ]]
}
if ! have_minio; then
	echo "bench.sh: no minio binary; running scripts/setup-test-deps.sh" >&2
	scripts/setup-test-deps.sh
	have_minio || { echo "bench.sh: still no minio binary (set S3FTP_MINIO)" >&2; exit 1; }
fi

# Leftovers of a killed run: FUSE and tmpfs mounts under the bench's work directories (the sshd tools mount
# under /run, whose path sshd accepts as a chroot).
awk '$5 ~ "^/(tmp|run)/s3ftp-bench-" {print $5}' /proc/self/mountinfo | sort -r | while read -r mp; do
	echo "bench.sh: unmounting leftover $mp" >&2
	fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" || true
done

exec go run ./bench "$@"
