package faults

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/s3ftp/s3ftp/internal/miniotest"
	"github.com/s3ftp/s3ftp/s3mount/s3client"
)

// TestConcurrentWritersAndReaders runs N writers and N readers through one mount at the same time. Writers
// stream new files; readers read objects put into S3 beforehand. It asserts that every transfer succeeds, every
// file reads back (through the mount and in S3) with the SHA-256 of what was written, and the daemon's peak RSS
// stays within memory budget + cache size + a fixed overhead.
//
// make test: 8 writers × 32 MiB and 8 readers × 16 MiB. Soak: 16 writers × 512 MiB and 16 readers × 256 MiB
// (8 GiB written; 50 × 1 GiB does not fit the test machine's time budget).
func TestConcurrentWritersAndReaders(t *testing.T) {
	const (
		budget   = 64 << 20
		cache    = 32 << 20
		overhead = 100 << 20 // Go runtime, FUSE request buffers, HTTP connections, the binary's text
	)
	n := pick(8, 16)
	writeSize := pick[int64](32<<20, 512<<20)
	readSize := pick[int64](16<<20, 256<<20)
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t, bucket)
	var lost int64
	defer func() { summary(t, 3*n, lost, 0) }()

	want := expected{}
	for i := range n {
		key := fmt.Sprintf("in/%02d.bin", i)
		seed := uint64(100 + i)
		if err := putStream(client, key, seed, readSize); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		want[key] = sum(seed, readSize)
	}
	m := startMount(t, srv, srv.Endpoint, bucket, "--memory-budget", "64MiB", "--part-size", "8MiB",
		"--cache-size", "32MiB", "--max-readahead", "16MiB")

	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			seed := uint64(200 + i)
			if r := writeFile(filepath.Join(m.dir, fmt.Sprintf("out-%02d.bin", i)), seed, writeSize, nil); r.failed() {
				errs <- fmt.Errorf("writer %d after %d bytes: write %v, close %v", i, r.written, r.writeErr, r.closeErr)
			}
		}()
		go func() {
			defer wg.Done()
			if err := sameAs(filepath.Join(m.dir, "in", fmt.Sprintf("%02d.bin", i)), uint64(100+i), readSize); err != nil {
				errs <- fmt.Errorf("reader %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
		lost += writeSize
	}
	for i := range n {
		seed := uint64(200 + i)
		name := fmt.Sprintf("out-%02d.bin", i)
		want[name] = sum(seed, writeSize)
		if err := sameAs(filepath.Join(m.dir, name), seed, writeSize); err != nil {
			t.Errorf("read back %s: %v", name, err)
			lost += writeSize
		}
	}
	lost += checkObjects(t, client, want)

	hwm := vmHWM(t, m.pid)
	t.Logf("%d writers × %d MiB, %d readers × %d MiB: daemon peak RSS %d MiB (limit %d MiB)",
		n, writeSize>>20, n, readSize>>20, hwm>>20, (budget+cache+overhead)>>20)
	if hwm > budget+cache+overhead {
		t.Errorf("daemon peak RSS %d MiB exceeds memory budget %d MiB + cache %d MiB + %d MiB overhead",
			hwm>>20, budget>>20, cache>>20, overhead>>20)
	}
}

// putStream stores prng(seed, size) under key with a multipart upload of 16 MiB parts, so that the test
// process never holds a whole object.
func putStream(c s3client.Client, key string, seed uint64, size int64) error {
	ctx := context.Background()
	const part = 16 << 20
	if size <= part {
		body, _ := io.ReadAll(prng(seed, size))
		_, err := c.PutObject(ctx, key, body, s3client.PutOptions{})
		return err
	}
	id, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{})
	if err != nil {
		return err
	}
	src := prng(seed, size)
	buf := make([]byte, part)
	var parts []s3client.Part
	for num := int32(1); ; num++ {
		k, _ := io.ReadFull(src, buf)
		if k == 0 {
			break
		}
		etag, err := c.UploadPart(ctx, key, id, num, buf[:k])
		if err != nil {
			c.AbortMultipartUpload(ctx, key, id)
			return err
		}
		parts = append(parts, s3client.Part{Number: num, ETag: etag})
	}
	_, err = c.CompleteMultipartUpload(ctx, key, id, parts)
	return err
}
