package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Daemon mode. Go cannot fork a running process, so the command starts itself again in the background: a new
// session, stdin and stdout on /dev/null, stderr on --log-file (or /dev/null, logs then go to syslog), working
// directory "/" (entered after the arguments are parsed, so relative paths resolve as the user meant). The child inherits a pipe as file descriptor 3, named in readyFDEnv, and writes exactly one line
// to it: "ready" once the mount serves requests, or "error CODE MESSAGE" when it cannot start. The parent prints
// MESSAGE, exits with CODE, and exits 0 on "ready". If the pipe closes without a line the child died, and the
// parent reports its exit status.

// readyTimeout bounds the parent's wait for the child's status line: the child's S3 checks time out after
// startupTimeout, so only a hung FUSE mount can make it wait this long.
const readyTimeout = startupTimeout + time.Minute

// readyFDEnv names the environment variable that marks the background process and holds its readiness pipe's fd.
const readyFDEnv = "S3MOUNT_READY_FD"

// notifier is the child's end of the readiness pipe. A nil notifier (foreground mode) does nothing.
type notifier struct{ f *os.File }

// childNotifier returns the readiness pipe when this process is the background child, nil otherwise. It clears
// the variable so processes started by the mount do not inherit it.
func childNotifier() *notifier {
	v := os.Getenv(readyFDEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	return &notifier{f: os.NewFile(uintptr(fd), "s3mount-ready")}
}

// ready reports success to the parent and closes the pipe.
func (n *notifier) ready() {
	if n == nil || n.f == nil {
		return
	}
	fmt.Fprintln(n.f, "ready")
	n.f.Close()
	n.f = nil
}

// fail reports err with its exit code to the parent and closes the pipe.
func (n *notifier) fail(code int, err error) {
	if n == nil || n.f == nil {
		return
	}
	fmt.Fprintf(n.f, "error %d %s\n", code, oneLine(err.Error()))
	n.f.Close()
	n.f = nil
}

// daemonChdir moves the background child to "/" so it does not keep the caller's directory busy.
func daemonChdir() error {
	return os.Chdir("/")
}

// oneLine joins a multi-line message so the cause prints as one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// startDaemon starts the background child with the same arguments and waits for its readiness line. It returns
// nil when the mount is ready, otherwise an *exitError carrying the child's code and message.
func startDaemon(c *config, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return withCode(ExitDaemon, fmt.Errorf("cannot find own executable to start the daemon: %w", err))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return withCode(ExitDaemon, fmt.Errorf("readiness pipe: %w", err))
	}
	defer r.Close()

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return withCode(ExitDaemon, err)
	}
	defer devnull.Close()
	stderr := devnull
	if c.LogFile != "" {
		f, err := openLogFile(c.LogFile)
		if err != nil {
			w.Close()
			return withCode(ExitUsage, err)
		}
		defer f.Close()
		stderr = f
	}

	if err := closeInheritedOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "s3mount: warning: %v: descriptors inherited by this command may stay open in the daemon\n", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, stderr
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	// The child parses the same arguments, so it must resolve a relative mount point from this directory; it
	// changes to "/" itself afterwards (daemonChdir).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return withCode(ExitDaemon, fmt.Errorf("starting the daemon: %w", err))
	}
	w.Close() // the child holds the only write end: EOF means it is done with the pipe

	type status struct {
		line string
		err  error
	}
	st := make(chan status, 1)
	go func() {
		line, err := readStatusLine(r)
		st <- status{line, err}
	}()
	var line string
	var readErr error
	select {
	case s := <-st:
		line, readErr = s.line, s.err
	case <-time.After(readyTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		if checkMountpoint(c.Mountpoint) != nil {
			// The child may have mounted before it hung: do not leave a dead mount behind.
			detach(c.Mountpoint)
		}
		return withCode(ExitDaemon, fmt.Errorf("the background process was not ready after %v; killed it (see its log)", readyTimeout))
	}
	if line == "ready" {
		// The child keeps running; release it so it is not reaped by this process.
		return cmd.Process.Release()
	}
	if code, msg, ok := parseErrorLine(line); ok {
		cmd.Wait()
		return withCode(code, errors.New(msg))
	}
	werr := cmd.Wait()
	cause := "exited"
	if werr != nil {
		cause = werr.Error()
	}
	if readErr != nil {
		cause += "; reading its status: " + readErr.Error()
	}
	return withCode(ExitDaemon, fmt.Errorf("the background process ended before the mount was ready (%s); see its log", cause))
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec. Descriptors this process inherited
// without that flag (mount(8)'s, a shell's, a test harness's pipe) would otherwise live on in the daemon and keep
// whoever waits for their EOF waiting. The readiness pipe is passed explicitly through ExtraFiles.
func closeInheritedOnExec() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing open descriptors: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

// readStatusLine reads the child's single status line; "" when the pipe closed without one.
func readStatusLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return strings.TrimSpace(line), err
}

// parseErrorLine parses "error CODE MESSAGE".
func parseErrorLine(line string) (code int, msg string, ok bool) {
	rest, ok := strings.CutPrefix(line, "error ")
	if !ok {
		return 0, "", false
	}
	c, msg, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(c)
	if err != nil || code <= 0 || code > 125 {
		return 0, "", false
	}
	return code, msg, true
}
