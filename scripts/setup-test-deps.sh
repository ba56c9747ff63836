#!/usr/bin/env bash
# setup-test-deps.sh installs what the test suite needs and is missing: fuse3, curl, lftp, python3, vsftpd,
# inotify-tools, haproxy, iproute2, util-linux, rsync, s3fs, openssh-client, sshpass (Debian packages) and a minio binary (built with go install). Present tools are reused.
# Any failure stops the script with a message; nothing is skipped silently.
set -euo pipefail

say() { echo "setup-test-deps: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# binary -> Debian package
declare -A pkgs=(
	[fusermount3]=fuse3
	[curl]=curl
	[lftp]=lftp
	[python3]=python3
	[vsftpd]=vsftpd
	[inotifywait]=inotify-tools
	[flock]=util-linux
	[gcc]=gcc # the race detector links with cgo
	[haproxy]=haproxy # scaletest: the TCP load balancer in front of two hosts
	[ip]=iproute2     # scaletest: network namespaces and veth links
	[nsenter]=util-linux
	[rsync]=rsync # s3mount: rsync -a run twice changes nothing (directory times kept)
	[s3fs]=s3fs   # s3mount: s3fs and s3mount read each other's directories, modes, symlinks and xattrs
	[sftp]=openssh-client # sftpfront: the OpenSSH sftp client against the SFTP server
	[sshpass]=sshpass     # sftpfront: gives sftp its password
)
missing=()
for bin in "${!pkgs[@]}"; do
	have "$bin" || missing+=("${pkgs[$bin]}")
done
if ((${#missing[@]})); then
	sudo=()
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
		sudo=(sudo)
	fi
	command -v apt-get >/dev/null || die "apt-get not available; install by hand: ${missing[*]}"
	say "installing ${missing[*]}"
	"${sudo[@]}" apt-get update -q || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
	for bin in "${!pkgs[@]}"; do
		have "$bin" || die "$bin still missing after installing ${pkgs[$bin]}"
	done
fi

[ -c /dev/fuse ] || die "/dev/fuse is missing: FUSE tests cannot run (load the fuse module or run the container with --device /dev/fuse)"

# minio: the same search order as internal/miniolocal.FindBinary.
find_minio() {
	if [ -n "${S3FTP_MINIO:-}" ]; then
		[ -x "$S3FTP_MINIO" ] || die "\$S3FTP_MINIO=$S3FTP_MINIO is not executable"
		echo "$S3FTP_MINIO"
		return
	fi
	if command -v minio >/dev/null 2>&1; then
		command -v minio
		return
	fi
	local c gp candidates=()
	[ -n "$(go env GOBIN)" ] && candidates+=("$(go env GOBIN)/minio")
	IFS=: read -ra gp <<<"$(go env GOPATH)"
	for c in "${gp[@]}"; do candidates+=("$c/bin/minio"); done
	candidates+=(/root/go/bin/minio)
	for c in "${candidates[@]}"; do
		[ -x "$c" ] && { echo "$c"; return; }
	done
	return 0
}
minio=$(find_minio)
if [ -z "$minio" ]; then
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	say "building minio into $gobin (takes several minutes)"
	GOBIN="$gobin" GOFLAGS= go install github.com/minio/minio@latest || die "go install github.com/minio/minio@latest failed"
	minio=$(find_minio)
	[ -n "$minio" ] || die "minio built but not found in $gobin"
fi
"$minio" --version >/dev/null 2>&1 || die "$minio does not run"
say "ok (minio: $minio)"
