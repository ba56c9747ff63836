package s3mount_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A GET that fails mid-stream gives the reader EIO, never a short or wrong read — also when the transport's
// error wraps io.EOF (a dropped connection), which must not be mistaken for the end of the object.
// (SEMANTICS.md, Tenets 2 and 3)
func TestFakeDroppedGETIsEIO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
	}{
		{"wraps-io.EOF", io.EOF},
		{"unexpected-EOF", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, fake := mountFake(t, nil)
			data := pattern(6<<20, 9)
			fake.Put("obj", data)
			// Every GET body breaks after 512 bytes. The kernel retries a failed readahead with a plain read,
			// so the faults must outlast its retries for the error to reach the reader.
			fake.FailNextBody(10000, 512, tc.cause)
			f, err := os.Open(filepath.Join(env.Dir, "obj"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := io.ReadAll(f)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("ReadAll after a dropped GET: %d bytes, err %v; want EIO", len(got), err)
			}
			if len(got) >= len(data) {
				t.Fatalf("read %d bytes of %d despite the failure", len(got), len(data))
			}
			for i := range got {
				if got[i] != data[i] {
					t.Fatalf("byte %d differs from the object's", i)
				}
			}
		})
	}
}
