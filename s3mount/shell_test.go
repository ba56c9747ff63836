package s3mount_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/s3ftp/s3ftp/s3mount/mounttest"
)

// Everyday tools work on the mount: the shell's redirections (new and existing files), cp over an existing
// file, dd, touch, mkdir -p, mv, rm -r, ls -l, and >> onto existing data.
// The tools run in a child process (go-fuse warns about a process reading its own mount through exec'd code,
// so bash is started outside the mount and only its commands touch it).
func TestMinioShellTools(t *testing.T) {
	env := mounttest.Mount(t, mounttest.Options())
	script := `
set -eu
cd /
m="$1"
echo one > "$m/a.txt"
echo two > "$m/a.txt"
test "$(cat "$m/a.txt")" = two
head -c 7000000 /dev/zero | tr '\0' 'z' > /tmp/s3mount-shell-src.$$
cp /tmp/s3mount-shell-src.$$ "$m/copy.bin"
cp /tmp/s3mount-shell-src.$$ "$m/copy.bin"
cmp /tmp/s3mount-shell-src.$$ "$m/copy.bin"
dd if=/tmp/s3mount-shell-src.$$ of="$m/dd.bin" bs=1M status=none
cmp /tmp/s3mount-shell-src.$$ "$m/dd.bin"
rm -f /tmp/s3mount-shell-src.$$
touch "$m/empty" "$m/a.txt"
test -f "$m/empty" && test ! -s "$m/empty"
mkdir -p "$m/x/y/z"
mv "$m/a.txt" "$m/x/y/z/a.txt"
test ! -e "$m/a.txt"
test "$(cat "$m/x/y/z/a.txt")" = two
echo more >> "$m/x/y/z/a.txt"
test "$(cat "$m/x/y/z/a.txt")" = "$(printf 'two\nmore')"
ls -l "$m" "$m/x/y/z" > /dev/null
rm -r "$m/x"
test ! -e "$m/x"
ls "$m" | tr '\n' ' '
`
	out, err := exec.Command("bash", "-c", script, "bash", env.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("shell script failed: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "copy.bin dd.bin empty"; got != want {
		t.Errorf("final listing = %q, want %q", got, want)
	}
	page, err := env.Client.List(context.Background(), "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	if got, want := strings.Join(keys, " "), "copy.bin dd.bin empty"; got != want {
		t.Errorf("objects = %q, want %q", got, want)
	}
}
