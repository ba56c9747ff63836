package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// checkSize is the self-check file's size: above the default part size, so the upload is multipart.
const checkSize = 20<<20 + 12345

// selfCheck walks through what the printed commands do and verifies each result.
func (d *demo) selfCheck(ctx context.Context) error {
	name := fmt.Sprintf("demo-check-%d.bin", time.Now().UnixNano())
	local := filepath.Join(d.dir, name)
	data := make([]byte, checkSize)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	if err := os.WriteFile(local, data, 0o600); err != nil {
		return err
	}
	defer os.Remove(local)
	want := sha256.Sum256(data)
	url := fmt.Sprintf("ftp://%s:%s@%s/", demoUser, d.password, d.o.listen)

	d.say("check: curl upload of %d bytes as %s", len(data), name)
	if out, err := d.curl(ctx, "-T", local, url+name); err != nil {
		return fmt.Errorf("check: upload: %v\n%s", err, out)
	}

	got, err := os.ReadFile(filepath.Join(d.mnt, name))
	if err != nil {
		return fmt.Errorf("check: reading the upload through the mount: %w", err)
	}
	if sha256.Sum256(got) != want {
		return fmt.Errorf("check: the mount has %d bytes with different content", len(got))
	}
	d.say("check: %s/%s has the uploaded bytes", d.mnt, name)

	client, err := s3client.New(ctx, d.s3cfg)
	if err != nil {
		return fmt.Errorf("check: S3 client: %w", err)
	}
	rc, info, err := client.GetObject(ctx, name, 0, -1, "")
	if err != nil {
		return fmt.Errorf("check: GetObject %s from bucket %s: %w", name, d.bucket, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("check: reading object %s: %w", name, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("check: object %s has %d bytes with different content", name, n)
	}
	d.say("check: object %s in bucket %s has the uploaded bytes (ETag %s)", name, d.bucket, info.ETag)

	out, err := d.curl(ctx, "-l", url)
	if err != nil || !strings.Contains(out, name) {
		return fmt.Errorf("check: listing does not show %s: %v\n%s", name, err, out)
	}
	copyPath := local + ".download"
	defer os.Remove(copyPath)
	if out, err := d.curl(ctx, "-o", copyPath, url+name); err != nil {
		return fmt.Errorf("check: download: %v\n%s", err, out)
	}
	back, err := os.ReadFile(copyPath)
	if err != nil || sha256.Sum256(back) != want {
		return fmt.Errorf("check: the download differs (%d bytes, %v)", len(back), err)
	}
	d.say("check: listing and download over FTPS match")

	if err := client.DeleteObject(ctx, name); err != nil {
		return fmt.Errorf("check: deleting %s: %w", name, err)
	}
	d.say("check: passed")
	return nil
}

// curl runs curl over explicit FTPS against the demo server and returns its output.
func (d *demo) curl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	all := append([]string{"--ssl-reqd", "-k", "-sS", "--fail"}, args...)
	out, err := exec.CommandContext(ctx, "curl", all...).CombinedOutput()
	return string(out), err
}
