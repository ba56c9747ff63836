package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// benchEnv is what every workload shares: the work directory, MinIO, the raw client, the binaries under test,
// the scratch file systems and the registry of live mounts.
type benchEnv struct {
	opts   options
	work   string // removed at the end unless --keep
	logDir string

	minio                *minioServer
	endpoint             string
	accessKey, secretKey string
	raw                  *rawClient
	// proxy is the emulated link every tool's endpoint goes through (nil without --link).
	proxy *linkProxy

	// s3mountBin and ftpfrontBin are empty when the binary could not be built; binErr says why.
	s3mountBin, ftpfrontBin string
	binErr                  map[string]error
	s3fsPasswd              string

	mounts     *mountRegistry
	sessionSeq int

	// chrootBase is a root-owned directory under /run (no group- or world-writable component, unlike /tmp) for
	// the sshd tools' mount points and sshd's files; "" when no sshd tool runs.
	chrootBase string
	// sshKey and sshPub are the SSH tools' client key and its authorized_keys line, made on first use.
	sshKey, sshPub string

	mu      sync.Mutex // guards tmpfses
	tmpfses []string   // mounted by the run, unmounted by close
}

// setupEnv prepares the work directory, MinIO on a tmpfs, and the binaries. On error everything set up so far is
// torn down.
func setupEnv(ctx context.Context, o options) (e *benchEnv, err error) {
	e = &benchEnv{opts: o, mounts: newMountRegistry(), binErr: map[string]error{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.work, err = os.MkdirTemp("", "s3ftp-bench-"); err != nil {
		return e, err
	}
	e.logDir = filepath.Join(e.work, "logs")
	if err := os.Mkdir(e.logDir, 0o755); err != nil {
		return e, err
	}
	dataDir := filepath.Join(e.work, "minio-data")
	if err := e.mountTmpfs(dataDir); err != nil {
		return e, fmt.Errorf("MinIO data tmpfs: %w", err)
	}
	if e.minio, err = startMinio(ctx, o.MinioBin, dataDir, filepath.Join(e.logDir, "minio.log")); err != nil {
		return e, err
	}
	e.endpoint, e.accessKey, e.secretKey = e.minio.endpoint, e.minio.accessKey, e.minio.secretKey
	if o.Link.on() {
		// Every client, the set-up's seeding and the durability polls included, uses e.endpoint, so every
		// tool sees the same link.
		if e.proxy, err = startLinkProxy(e.minio.endpoint, o.Link); err != nil {
			return e, err
		}
		e.endpoint = e.proxy.endpoint
	}
	e.raw = newRawClient(e.endpoint, e.accessKey, e.secretKey)

	e.s3fsPasswd = filepath.Join(e.work, "s3fs-passwd")
	if err := os.WriteFile(e.s3fsPasswd, []byte(e.accessKey+":"+e.secretKey+"\n"), 0o600); err != nil {
		return e, err
	}
	for _, t := range o.Tools {
		switch t {
		case toolS3mount, toolFTPS, toolSFTP, toolSSHDS3mount:
			if e.s3mountBin == "" && e.binErr[toolS3mount] == nil {
				e.s3mountBin, e.binErr[toolS3mount] = e.binary(o.S3mountBin, "s3mount")
			}
			if (t == toolFTPS || t == toolSFTP) && e.ftpfrontBin == "" && e.binErr[toolFTPS] == nil {
				e.ftpfrontBin, e.binErr[toolFTPS] = e.binary(o.FtpfrontBin, "ftpfront")
			}
		}
		if isSSHTool(t) && sshTools[t].sshd && e.chrootBase == "" {
			if e.chrootBase, err = os.MkdirTemp("/run", "s3ftp-bench-"); err != nil {
				return e, fmt.Errorf("sshd chroot base: %w", err)
			}
		}
	}
	return e, nil
}

// binary returns the given path, or builds ./cmd/NAME of this module into the work directory.
func (e *benchEnv) binary(given, name string) (string, error) {
	if given != "" {
		return given, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(e.work, "bin", name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(b))
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i] + " …"
		}
		slog.Error("building a binary under test failed; its rows will show the error", "binary", name, "err", msg)
		return "", fmt.Errorf("go build ./cmd/%s failed: %s", name, msg)
	}
	return out, nil
}

// moduleRoot finds the directory of this module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench from inside the s3ftp module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// mountTmpfs mounts a tmpfs on dir (created if needed); close unmounts it.
func (e *benchEnv) mountTmpfs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16g,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t tmpfs %s (needs root): %v: %s", dir, err, bytes.TrimSpace(out))
	}
	e.mu.Lock()
	e.tmpfses = append(e.tmpfses, dir)
	e.mu.Unlock()
	return nil
}

// scratch returns the tool's scratch file system, emptied: a tmpfs that serves as the daemon's TMPDIR and cache
// directory, so its usage is exactly what that daemon stored locally.
func (e *benchEnv) scratch(tool string) (string, error) {
	dir := filepath.Join(e.work, "scratch-"+tool)
	if !mounted(dir) {
		if err := e.mountTmpfs(dir); err != nil {
			return "", err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, d := range ents {
		if err := os.RemoveAll(filepath.Join(dir, d.Name())); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// childEnv is the environment of every daemon: this process's, without AWS_* and RCLONE_* variables, plus the
// MinIO credentials and TMPDIR on the scratch file system.
func (e *benchEnv) childEnv(tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "RCLONE_") || strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID="+e.accessKey, "AWS_SECRET_ACCESS_KEY="+e.secretKey,
		"AWS_REGION=us-east-1", "TMPDIR="+tmp)
}

// close unmounts every mount, stops MinIO, unmounts the tmpfses and removes the work directory (unless --keep).
func (e *benchEnv) close() {
	e.mounts.abortAll()
	if e.proxy != nil {
		e.proxy.stop()
	}
	if e.minio != nil {
		e.minio.stop()
	}
	e.mu.Lock()
	tmpfses := e.tmpfses
	e.tmpfses = nil
	e.mu.Unlock()
	for i := len(tmpfses) - 1; i >= 0; i-- {
		if out, err := exec.Command("umount", tmpfses[i]).CombinedOutput(); err != nil {
			slog.Error("unmounting a scratch tmpfs failed; trying lazily", "dir", tmpfses[i], "err", err,
				"output", strings.TrimSpace(string(out)))
			exec.Command("umount", "-l", tmpfses[i]).Run()
		}
	}
	if e.chrootBase != "" {
		// Only sshd's files and the (empty) base itself: a mount point left behind is never walked into.
		os.RemoveAll(filepath.Join(e.chrootBase, "sshd"))
		if err := os.Remove(e.chrootBase); err != nil {
			slog.Error("removing the sshd chroot base failed", "dir", e.chrootBase, "err", err)
		}
	}
	if e.work == "" {
		return
	}
	if e.opts.Keep {
		fmt.Fprintf(os.Stderr, "work directory kept: %s\n", e.work)
		return
	}
	if err := os.RemoveAll(e.work); err != nil {
		slog.Error("removing the work directory failed", "dir", e.work, "err", err)
	}
}
