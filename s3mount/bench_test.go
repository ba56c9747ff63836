package s3mount_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3ftp/s3ftp/s3mount"
	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

const benchFileSize = 64 << 20

// benchOptions are the production defaults: benchmarks measure what users get.
func benchOptions() s3mount.Options { return s3mount.DefaultOptions() }

// BenchmarkMinioSequentialWrite measures a streaming write of 64 MiB through the mount into MinIO, close
// (upload completion) included.
func BenchmarkMinioSequentialWrite(b *testing.B) {
	env := mounttest.Mount(b, benchOptions())
	buf := make([]byte, 1<<20)
	b.SetBytes(benchFileSize)
	for i := 0; b.Loop(); i++ {
		f, err := os.Create(filepath.Join(env.Dir, "w"))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < benchFileSize; off += len(buf) {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMinioSequentialRead measures reading a 64 MiB object through the mount, each iteration on a fresh
// mount-level open (the block cache may hold part of it from the previous iteration).
func BenchmarkMinioSequentialRead(b *testing.B) {
	env := mounttest.Mount(b, benchOptions())
	if err := os.WriteFile(filepath.Join(env.Dir, "r"), make([]byte, benchFileSize), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(benchFileSize)
	for b.Loop() {
		f, err := os.Open(filepath.Join(env.Dir, "r"))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, f, buf); err != nil || n != benchFileSize {
			b.Fatalf("read %d, %v", n, err)
		}
		f.Close()
	}
}
