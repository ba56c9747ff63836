package s3mount

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// panickingFS panics in Read, Write and Release; its other operations are go-fuse's defaults (ENOSYS).
type panickingFS struct{ fuse.RawFileSystem }

func (panickingFS) Read(<-chan struct{}, *fuse.ReadIn, []byte) (fuse.ReadResult, fuse.Status) {
	panic("read exploded")
}

func (panickingFS) Write(<-chan struct{}, *fuse.WriteIn, []byte) (uint32, fuse.Status) {
	panic("write exploded")
}

func (panickingFS) Release(<-chan struct{}, *fuse.ReleaseIn) { panic("release exploded") }

func TestRecoveringFS(t *testing.T) {
	var logs bytes.Buffer
	r := newRecoveringFS(panickingFS{fuse.NewDefaultRawFileSystem()},
		slog.New(slog.NewTextHandler(&logs, nil)))

	if res, st := r.Read(nil, &fuse.ReadIn{}, make([]byte, 8)); res != nil || st != fuse.EIO {
		t.Errorf("panicking Read = (%v, %v), want (nil, EIO)", res, st)
	}
	if n, st := r.Write(nil, &fuse.WriteIn{}, []byte("x")); n != 0 || st != fuse.EIO {
		t.Errorf("panicking Write = (%d, %v), want (0, EIO)", n, st)
	}
	r.Release(nil, &fuse.ReleaseIn{}) // must return, not panic
	if st := r.GetAttr(nil, &fuse.GetAttrIn{}, &fuse.AttrOut{}); st != fuse.ENOSYS {
		t.Errorf("GetAttr = %v, want the wrapped file system's ENOSYS", st)
	}
	if n := r.panics.Load(); n != 3 {
		t.Errorf("panics counted = %d, want 3", n)
	}

	lines := strings.Split(strings.TrimRight(logs.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want one per panic (3): %q", len(lines), lines)
	}
	for i, op := range []string{"Read", "Write", "Release"} {
		l := lines[i]
		for _, want := range []string{"level=ERROR", "op=" + op, strings.ToLower(op) + " exploded",
			"panickingFS." + op} {
			if !strings.Contains(l, want) {
				t.Errorf("log line %d lacks %q: %s", i, want, l)
			}
		}
	}
}
