package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command runs a program per record: the record's JSON on stdin, a small fixed environment, no other file
// descriptors. Exit status 0 acknowledges the record; another status, a failure to start or the timeout is a
// failed attempt.
//
// The child's environment is only PATH (the daemon's) and
//
//	S3FTP_EVENT     the kind (upload_completed, ...)
//	S3FTP_EVENT_ID  the record's ID
//	S3FTP_USER      the login name
//	S3FTP_PATH      the virtual path
//	S3FTP_TO        a rename's target (empty otherwise)
//	S3FTP_SIZE      bytes transferred
//	S3FTP_RESULT    ok or failed
//	S3FTP_PROTOCOL  ftps, ftp or sftp
//
// so no credential of the daemon reaches it. The child runs in its own process group; at the timeout the whole
// group is killed. It inherits only stdin (the JSON), stdout and stderr (both captured, the last bytes logged on
// failure): every other descriptor of the daemon, open uploads and client sockets included, is close-on-exec.
// Go opens its own descriptors close-on-exec; NewCommand also marks so every descriptor above 2 the process
// inherited from its parent, once per process, since the daemon never passes those on.
type Command struct {
	argv    []string
	timeout time.Duration
}

// CommandConfig configures NewCommand.
type CommandConfig struct {
	// Argv is the program and its arguments; no shell is involved unless Argv names one.
	Argv []string
	// Timeout bounds one run (default 60s).
	Timeout time.Duration
}

// NewCommand checks cfg and builds the sink.
func NewCommand(cfg CommandConfig) (*Command, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("event command: empty command")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	closeInheritedOnce.Do(closeInheritedOnExec)
	return &Command{argv: append([]string(nil), cfg.Argv...), timeout: cfg.Timeout}, nil
}

var closeInheritedOnce sync.Once

// closeInheritedOnExec sets close-on-exec on every open descriptor above 2.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// outputTail keeps the last bytes written to it.
type outputTail struct{ b []byte }

const outputTailMax = 1024

func (o *outputTail) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	if len(o.b) > outputTailMax {
		o.b = append(o.b[:0], o.b[len(o.b)-outputTailMax:]...)
	}
	return len(p), nil
}

// Deliver implements Sink.
func (c *Command) Deliver(ctx context.Context, body []byte, r *Record) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	var out outputTail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"S3FTP_EVENT=" + r.Kind,
		"S3FTP_EVENT_ID=" + r.ID,
		"S3FTP_USER=" + r.User,
		"S3FTP_PATH=" + r.Path,
		"S3FTP_TO=" + r.To,
		"S3FTP_SIZE=" + strconv.FormatInt(r.Size, 10),
		"S3FTP_RESULT=" + r.Result,
		"S3FTP_PROTOCOL=" + r.Protocol,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps stdout open must not hold the delivery past the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v", c.timeout)
	}
	if tail := strings.TrimSpace(string(out.b)); tail != "" {
		return fmt.Errorf("event command %s: %w; output: %q", c.argv[0], err, tail)
	}
	return fmt.Errorf("event command %s: %w", c.argv[0], err)
}
