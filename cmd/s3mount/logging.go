package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
)

// newLogger builds the process logger writing to w in the configured format and level.
func newLogger(c *config, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// openLogFile opens --log-file for appending, creating it with mode 0640.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// daemonLogWriter is where a daemon without --log-file logs: the system log when one listens on /dev/log,
// otherwise nowhere (the parent warns about that before detaching).
func daemonLogWriter() io.Writer {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "s3mount")
	if err != nil {
		return io.Discard
	}
	return w
}

// syslogAvailable reports whether a system logger listens on /dev/log.
func syslogAvailable() bool {
	_, err := os.Stat("/dev/log")
	return err == nil
}
