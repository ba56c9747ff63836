package mountinfo

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const sample = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:32 / /mnt/s3 rw,nosuid,nodev,relatime shared:20 - fuse.s3mount s3ftp rw,user_id=0,group_id=0
37 22 0:33 / /mnt/with\040space rw shared:21 - tmpfs tmpfs rw
38 22 0:34 / /mnt/back\134slash rw shared:22 - tmpfs tmpfs rw
39 22 0:35 / /sys/fs/fuse/connections rw - fusectl fusectl rw
short line
40 22 0:36 / /no/separator rw
`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{22, unix.Mkdev(0, 21), "/", "ext4"},
		{36, unix.Mkdev(0, 32), "/mnt/s3", "fuse.s3mount"},
		{37, unix.Mkdev(0, 33), "/mnt/with space", "tmpfs"},
		{38, unix.Mkdev(0, 34), `/mnt/back\slash`, "tmpfs"},
		{39, unix.Mkdev(0, 35), "/sys/fs/fuse/connections", "fusectl"},
		{40, unix.Mkdev(0, 36), "/no/separator", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestTopAndDev checks the device number against stat(2)'s encoding and that Top picks the file system mounted
// last on a directory when several are stacked there.
func TestTopAndDev(t *testing.T) {
	const stacked = `22 1 8:1 / / rw - ext4 /dev/sda1 rw
50 22 0:60 / /srv/ftp rw - fuse.s3mount s3ftp rw
51 22 0:61 / /other rw - tmpfs tmpfs rw
52 50 259:3 / /srv/ftp rw - tmpfs tmpfs rw
53 22 x:y / /bad rw - tmpfs tmpfs rw
`
	entries, err := Parse(strings.NewReader(stacked))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := entries[0].Dev, unix.Mkdev(8, 1); got != want {
		t.Errorf("Dev of 8:1 = %#x, want %#x", got, want)
	}
	if got := entries[4].Dev; got != 0 {
		t.Errorf("Dev of x:y = %#x, want 0", got)
	}
	top, ok := Top(entries, "/srv/ftp")
	if !ok || top.ID != 52 || top.Dev != unix.Mkdev(259, 3) || top.FSType != "tmpfs" {
		t.Errorf("Top(/srv/ftp) = %+v, %v; want the tmpfs mounted over the FUSE mount (ID 52, 259:3)", top, ok)
	}
	if _, ok := Top(entries, "/srv"); ok {
		t.Error("Top(/srv) found a mount; /srv is not a mount point")
	}
}

func TestParseLongLine(t *testing.T) {
	long := "1 2 0:1 / /long rw " + strings.Repeat("x", 100<<10) + " - tmpfs tmpfs rw\n"
	got, err := Parse(strings.NewReader(long))
	if err != nil || len(got) != 1 || got[0] != (Entry{1, unix.Mkdev(0, 1), "/long", "tmpfs"}) {
		t.Fatalf("Parse(100 KiB line) = %+v, %v", got, err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		``:                     ``,
		`/srv/ftp`:             "/srv/ftp",
		`/mnt/a\040b`:          "/mnt/a b",
		`/x\134y`:              `/x\y`,
		`/t\011ab\012`:         "/t\tab\n",
		`/bad\09`:              `/bad\09`,
		`/end\04`:              `/end\04`,
		`/end\040`:             "/end ",
		`\040`:                 " ",
		`\`:                    `\`,
		`/big\777`:             `/big\777`,
		`/tmp/demo\040run/mnt`: "/tmp/demo run/mnt",
		`\134040`:              `\040`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// escape is the kernel's mangling of a mount path (fs/proc_namespace.c: space, tab, newline, backslash).
func escape(s string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(s)
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"/mnt/a b", `/x\y`, "/t\tab\n", `\040`, `/end\04`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := Unescape(escape(s)); got != s {
			t.Errorf("Unescape(escape(%q)) = %q", s, got)
		}
		// Unescaping never lengthens a string, and a string without a backslash is returned unchanged.
		if got := Unescape(s); len(got) > len(s) || (!strings.Contains(s, `\`) && got != s) {
			t.Errorf("Unescape(%q) = %q", s, got)
		}
	})
}

func TestLookupLive(t *testing.T) {
	e, ok, err := Lookup("/")
	if err != nil || !ok || e.MountPoint != "/" || e.FSType == "" {
		t.Fatalf("Lookup(/) = %+v, %v, %v; want the root file system", e, ok, err)
	}
	dir := t.TempDir()
	if ok, err := IsMounted(dir); err != nil || ok {
		t.Fatalf("IsMounted(%s) = %v, %v; want false for a fresh temp dir", dir, ok, err)
	}
}

func TestLazyUnmountReportsFailure(t *testing.T) {
	dir := t.TempDir()
	err := LazyUnmount(dir)
	if err == nil || !strings.Contains(err.Error(), "fusermount3 -u -z "+dir) {
		t.Fatalf("LazyUnmount(%s) on a directory that is not mounted = %v; want an error naming the command", dir, err)
	}
}
