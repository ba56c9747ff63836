package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the whole command; it returns the exit code.
func run(args []string) int {
	if len(args) > 0 && args[0] == watcherArg {
		return runUnmountWatcher(args[1:])
	}
	child := childNotifier()
	c, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		fmt.Print(usage())
		return ExitOK
	}
	if err != nil {
		child.fail(ExitUsage, err)
		fmt.Fprintf(os.Stderr, "s3mount: %s (see s3mount --help)\n", oneLine(err.Error()))
		return ExitUsage
	}

	if child == nil && !c.Foreground {
		// Fail fast on the cheap local check; the child repeats it with the S3 checks.
		if err := checkMountpoint(c.Mountpoint); err != nil {
			return report(withCode(ExitMount, err))
		}
		if c.LogFile == "" && !syslogAvailable() {
			fmt.Fprintln(os.Stderr, "s3mount: warning: no syslog at /dev/log and no --log-file: the daemon's logs are discarded")
		}
		return report(startDaemon(c, args))
	}

	if child != nil {
		if err := daemonChdir(); err != nil {
			child.fail(ExitDaemon, err)
			return ExitDaemon
		}
	}
	var w io.Writer = os.Stderr
	switch {
	case child != nil && c.LogFile != "":
		// The parent opened the log file as this process's stderr.
	case child != nil:
		w = daemonLogWriter()
	case c.LogFile != "":
		f, err := openLogFile(c.LogFile)
		if err != nil {
			return report(withCode(ExitUsage, err))
		}
		defer f.Close()
		w = f
	}
	log := newLogger(c, w)
	for _, o := range c.Ignored {
		log.Debug("mount option ignored", "option", o)
	}

	err = serve(context.Background(), c, log, child.ready)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if child == nil && c.LogFile == "" {
		// Foreground logging to stderr: the plain line is the log line.
		return report(err)
	}
	log.Error("s3mount failed", "err", oneLine(err.Error()), "exit_code", code)
	child.fail(code, err)
	if child == nil {
		return report(err)
	}
	return code
}

// report prints err as one line on stderr and returns its exit code (0 for nil).
func report(err error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(os.Stderr, "s3mount: %s\n", oneLine(err.Error()))
	return exitCode(err)
}

// exitCode is the code carried by err, ExitInternal when it carries none.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitInternal
}
