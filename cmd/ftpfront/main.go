// Command ftpfront serves a local directory (normally an s3mount mount) over FTPS.
//
//	ftpfront --root /srv/s3 --users /etc/ftpfront/users.yaml --tls-cert cert.pem --tls-key key.pem
//	ftpfront ... --sftp-listen :2022 --sftp-host-key-dir /var/lib/ftpfront   # SFTP beside FTPS
//	ftpfront passwd            # prints an argon2id hash for the users file
//
// Every flag may also come from the environment (FTPFRONT_PASSIVE_PORTS for --passive-ports) or from the
// configuration file named by --config or FTPFRONT_CONFIG (scripts/ftpfront.conf.example); the command line
// wins over the environment, which wins over the file (internal/flagenv).
//
// Exit codes: 0 clean shutdown; 2 usage (bad flag or value); 3 configuration (users file, certificate, audit
// log, --root not a mount point with --require-mount=true); 4 a listener (FTP, health or metrics) could not be bound; 5 the server stopped with an error.
//
// # Signals
//
// SIGINT and SIGTERM close the listeners and end every session (exit 0). SIGHUP (systemctl reload) re-reads the
// users file (--users) and the certificate and key (--tls-cert, --tls-key) without ending any session; a session
// whose account was removed or changed ends at its next command with 421 (package ftpfront, "Reloading users and
// the certificate"). A file that does not load keeps what was loaded before and is logged as one ERROR line naming
// it and the cause; "reload done" closes every reload with users=reloaded|kept and
// certificate=reloaded|kept|none. Flags and the configuration file are read only at start.
//
// # SFTP
//
// --sftp-listen ADDR (off when empty) serves SFTP (package sftpfront) beside FTPS, from the same users file and
// the same Access: one ban table, one connection limit, the same jails, refused names, failed-login delay,
// audit log and metrics; scp (legacy protocol and SFTP mode) is served on the same port. --sftp-host-key-dir
// holds the ed25519 and RSA host keys, generated there on first start and reused afterwards; their fingerprints
// are logged at start. Only modern algorithms are offered; --ssh-legacy-algorithms adds old ones for old
// clients (see sftpfront.Options.LegacyAlgorithms). The ready file gains a "sftp=ADDR" line.
//
// # Events
//
// --events-dir DIR turns every finished upload (completed or failed), download, delete, rename and mkdir, over
// FTPS and SFTP, into an event record (package events) journaled in DIR before the client's answer, and
// delivers it at least once to the sinks: those of the YAML file --event-sinks (any number, each with its own
// filter), a webhook named "webhook" (--event-webhook URL, --event-webhook-secret-file, --event-webhook-ca-file)
// and a command named "command" (--event-command "PROG ARGS"); --event-filter filters the two flag sinks.
// Sinks without --events-dir are a usage error; a sinks file, secret or CA file that does not load, or a
// journal that cannot be opened, is a configuration error (exit 3). The journal is closed after the servers,
// so the last session's events are in it.
//
// # Serving a mount
//
// --root is normally the s3mount mount point. When its daemon dies, s3mount removes the mount and the path becomes
// the local directory underneath; --require-mount (default auto: required iff --root is a mount point at start)
// makes every file operation check that --root is still a mount point and answer 451 "Storage unavailable, try
// again later" while it is not, so no upload lands on local disk; /healthz fails by the same check. Once s3mount
// mounts again, operations resume without a restart. With --require-mount=true, a --root that is not a mount
// point at start is a configuration error (exit 3).
//
// # Observability
//
// Logs go to stderr as text or JSON lines (--log-format), one line per event with its cause. The audit log
// (--audit-log) is a separate JSON-lines record of logins and transfers. Prometheus metrics (sessions, logins by
// result, bans, transfers and bytes by direction, recovered panics; names in package internal/metrics) are
// served at /metrics on --metrics-addr and on --health-addr next to /healthz; both listeners are off unless set.
// /healthz answers from the last probe of --root (create, write, read and delete a file in the reserved directory
// .s3ftp-health, which FTP users never see) and probes at most once per --health-interval (package ftpfront,
// "Health check").
// The session, login and transfer metrics are fed by the audit events (internal/metrics/ftpmetrics), so they
// count exactly what the audit log records.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3ftp/s3ftp/events"
	"github.com/s3ftp/s3ftp/ftpfront"
	"github.com/s3ftp/s3ftp/internal/flagenv"
	"github.com/s3ftp/s3ftp/internal/metrics"
	"github.com/s3ftp/s3ftp/internal/metrics/ftpmetrics"
	"github.com/s3ftp/s3ftp/sftpfront"
	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK     = 0
	exitUsage  = 2
	exitConfig = 3
	exitListen = 4
	exitServe  = 5
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "passwd" {
		return passwd(stdin, stdout, stderr)
	}
	cfg, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	return serve(cfg, stderr)
}

// config is the parsed command line: the library options plus what only the command handles.
type config struct {
	opts           ftpfront.Options
	sftp           sftpfront.Options
	access         ftpfront.AccessConfig
	root           string
	requireMount   ftpfront.RequireMount
	users          string
	auditLog       string
	healthAddr     string
	healthInterval time.Duration
	metricsAddr    string
	logFormat      string
	logLevel       slog.Level
	readyFile      string
	refuseUsers    string
	events         eventsConfig
	effective      *flagenv.Effective
}

// eventsConfig is the event journal and its sinks (package events).
type eventsConfig struct {
	opts           events.Options // Dir empty: events off
	sinksFile      string
	webhook        string
	webhookSecret  string
	webhookCA      string
	webhookTimeout time.Duration
	command        string
	commandTimeout time.Duration
	concurrency    int
	filter         events.Filter
}

// envPrefix names the environment variables and the configuration file variable (FTPFRONT_CONFIG).
const envPrefix = "FTPFRONT"

// parseFlags maps flags onto ftpfront.Options; it returns -1 to go on, or an exit code.
func parseFlags(args []string, stderr io.Writer) (*config, int) {
	c := &config{opts: ftpfront.DefaultOptions()}
	fs := flag.NewFlagSet("ftpfront", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &c.opts
	fs.StringVar(&c.root, "root", "", "directory served (the s3mount mount point); user homes are relative to it")
	requireMount := fs.String("require-mount", "auto", "refuse file operations (451) while --root is not a mount point: auto (iff it is one at start), true (start fails when it is not), false")
	fs.StringVar(&c.users, "users", "", "users file (YAML)")
	fs.StringVar(&o.Listen, "listen", o.Listen, "explicit FTPS (AUTH TLS) listen address")
	fs.StringVar(&o.ImplicitListen, "implicit-listen", "", "implicit FTPS listen address (off when empty)")
	fs.StringVar(&c.sftp.Listen, "sftp-listen", "", "SFTP (SSH) listen address (off when empty)")
	fs.StringVar(&c.sftp.HostKeyDir, "sftp-host-key-dir", "", "directory of the SSH host keys (ed25519, RSA), generated there on first start (required with --sftp-listen)")
	fs.BoolVar(&c.sftp.LegacyAlgorithms, "ssh-legacy-algorithms", false, "also offer old SSH algorithms for old clients: NIST ECDH and Diffie-Hellman key exchanges, AES-CTR, HMAC-SHA2/SHA1 without ETM, ssh-rsa (SHA-1) host key signatures")
	fs.BoolVar(&o.AllowPlain, "allow-plain", false, "allow logins and transfers without TLS")
	fs.BoolVar(&o.AllowActive, "allow-active", false, "enable PORT/EPRT (active mode)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fs.BoolVar(&o.TLSSelfSigned, "tls-self-signed", false, "generate an in-memory self-signed certificate")
	fs.BoolVar(&o.TLSLegacyCiphers, "tls-legacy-ciphers", false, "offer TLS 1.2 CBC cipher suites (SHA-1, SHA-256) to old clients; off: ECDHE with AEAD only")
	fs.StringVar(&o.PublicHost, "public-host", "", "address announced in PASV replies (default: the control connection's local address)")
	hostMap := fs.String("passive-host-map", "", "per-client PASV address: CIDR=HOST,... (longest prefix wins)")
	ports := fs.String("passive-ports", "40000-40099", "passive port range LOW-HIGH, 0 = any free port")
	allow := fs.String("passive-allow-cidr", "", "networks (load balancers) allowed to open passive data connections besides the client")
	proxyFrom := fs.String("proxy-protocol-from", "", "load balancers' networks (CIDR,...) that send a PROXY protocol v1/v2 header on the control listeners and the SFTP listener; their connections must carry one, whose source is the client; a header from elsewhere closes the connection; empty = off")
	fs.BoolVar(&o.ProxyProtocolData, "proxy-protocol-data", false, "expect the PROXY header on passive data connections from --proxy-protocol-from too (the balancer forwards the passive ports with send-proxy)")
	fs.DurationVar(&o.ProxyHeaderTimeout, "proxy-header-timeout", ftpfront.DefaultProxyHeaderTimeout, "wait for a trusted balancer's PROXY header")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "idle control connection timeout")
	fs.DurationVar(&o.DataTimeout, "data-timeout", o.DataTimeout, "data connection stall timeout")
	fs.DurationVar(&o.DataAcceptTimeout, "data-accept-timeout", o.DataAcceptTimeout, "wait for the client's data connection; an unused passive listener is closed and its port returned after it")
	fs.IntVar(&o.MaxPassivePerIP, "max-passive-per-ip", o.MaxPassivePerIP, "passive listeners waiting for a data connection per client address (IPv6: per /64); 0 = no bound")
	fs.DurationVar(&o.LoginTimeout, "login-timeout", o.LoginTimeout, "time from connect to login")
	fs.IntVar(&c.access.MaxConns, "max-conns", 200, "concurrent control connections in total")
	fs.IntVar(&c.access.MaxConnsPerIP, "max-conns-per-ip", 20, "concurrent control connections per address")
	fs.IntVar(&c.access.ReservedConns, "reserved-conns", 0, "of --max-conns, slots only addresses that logged in within 24h may take (0: a quarter; -1: none)")
	fs.IntVar(&c.access.BanAfter, "ban-after", 5, "failed logins within --ban-window that ban an address")
	fs.DurationVar(&c.access.BanWindow, "ban-window", 10*time.Minute, "window for --ban-after")
	fs.DurationVar(&c.access.BanFor, "ban-for", 30*time.Minute, "ban duration")
	fs.DurationVar(&c.access.FailDelay, "fail-delay", 2*time.Second, "delay before answering a failed login")
	fs.StringVar(&c.refuseUsers, "refuse-users", "", "comma-separated login names always refused (default: a built-in list; \"none\" refuses none)")
	fs.StringVar(&c.auditLog, "audit-log", "", "audit log file (JSON lines), \"-\" = stderr, empty = off")
	fs.StringVar(&c.healthAddr, "health-addr", "", "HTTP address serving /healthz and /metrics (off when empty)")
	fs.DurationVar(&c.healthInterval, "health-interval", ftpfront.DefaultHealthInterval, "how long /healthz answers from the last probe of --root before probing again (one probe per interval, whatever the check rate)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "HTTP address serving Prometheus /metrics (off when empty)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.readyFile, "ready-file", "", "write the bound listen address to this file once listening")
	ec := &c.events
	fs.StringVar(&ec.opts.Dir, "events-dir", "", "directory of the event journal, ack files and dead letters; events are off when empty")
	fs.StringVar(&ec.sinksFile, "event-sinks", "", "YAML file of event sinks (webhooks and commands, each with a filter)")
	fs.StringVar(&ec.webhook, "event-webhook", "", "URL of a webhook sink named \"webhook\" (JSON POST per event)")
	fs.StringVar(&ec.webhookSecret, "event-webhook-secret-file", "", "file holding the HMAC-SHA256 key of --event-webhook (X-S3ftp-Signature)")
	fs.StringVar(&ec.webhookCA, "event-webhook-ca-file", "", "PEM CA certificates that --event-webhook's certificate must chain to (default: system roots)")
	fs.DurationVar(&ec.webhookTimeout, "event-webhook-timeout", 10*time.Second, "timeout of one webhook attempt")
	fs.StringVar(&ec.command, "event-command", "", "command sink named \"command\": program and arguments split at blanks (no shell), event JSON on stdin")
	fs.DurationVar(&ec.commandTimeout, "event-command-timeout", time.Minute, "timeout of one --event-command run")
	fs.IntVar(&ec.concurrency, "event-concurrency", 1, "deliveries at once per sink given by flags (command children at once)")
	eventFilter := fs.String("event-filter", "", "filter of the sinks given by flags: kinds=K,...;users=U,...;paths=GLOB,...")
	fs.IntVar(&ec.opts.MaxAttempts, "event-max-attempts", 10, "failed attempts after which an event goes to the dead-letter file")
	fs.DurationVar(&ec.opts.Backoff, "event-backoff", time.Second, "wait after the first failed attempt; doubles per failure")
	fs.DurationVar(&ec.opts.MaxBackoff, "event-max-backoff", 5*time.Minute, "longest wait between attempts")
	configFile := fs.String("config", "", "configuration file (default $FTPFRONT_CONFIG); flags and FTPFRONT_* variables override it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ftpfront --root DIR --users FILE [flags]\n       ftpfront passwd")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	usage := func(format string, a ...any) (*config, int) {
		fmt.Fprintf(stderr, "ftpfront: "+format+"\n", a...)
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	eff, err := flagenv.Load(fs, envPrefix, *configFile)
	if err != nil {
		fmt.Fprintf(stderr, "ftpfront: configuration: %v\n", err)
		return nil, exitConfig
	}
	c.effective = eff
	if c.root == "" || c.users == "" {
		return usage("--root and --users are required")
	}
	if c.requireMount, err = ftpfront.ParseRequireMount(*requireMount); err != nil {
		return usage("--require-mount: %v", err)
	}
	if o.PassiveHostMap, err = ftpfront.ParseHostMap(*hostMap); err != nil {
		return usage("--passive-host-map: %v", err)
	}
	if o.PassivePortMin, o.PassivePortMax, err = ftpfront.ParsePortRange(*ports); err != nil {
		return usage("--passive-ports: %v", err)
	}
	if o.PassiveAllowCIDR, err = ftpfront.ParseCIDRList(*allow); err != nil {
		return usage("--passive-allow-cidr: %v", err)
	}
	if o.ProxyProtocolFrom, err = ftpfront.ParseCIDRList(*proxyFrom); err != nil {
		return usage("--proxy-protocol-from: %v", err)
	}
	if o.ProxyProtocolData && len(o.ProxyProtocolFrom) == 0 {
		return usage("--proxy-protocol-data needs --proxy-protocol-from")
	}
	if c.healthInterval <= 0 {
		return usage("--health-interval must be positive")
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return usage("--log-level: %v", err)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return usage("--log-format must be text or json")
	}
	switch strings.TrimSpace(c.refuseUsers) {
	case "":
	case "none":
		c.access.RefusedNames = []string{}
	default:
		for _, n := range strings.Split(c.refuseUsers, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.access.RefusedNames = append(c.access.RefusedNames, n)
			}
		}
	}
	if err := o.Validate(); err != nil {
		return usage("%v", err)
	}
	if ec.filter, err = events.ParseFilter(*eventFilter); err != nil {
		return usage("--event-filter: %v", err)
	}
	if ec.opts.Dir == "" && (ec.sinksFile != "" || ec.webhook != "" || ec.command != "") {
		return usage("event sinks need --events-dir")
	}
	if ec.webhook == "" && (ec.webhookSecret != "" || ec.webhookCA != "") {
		return usage("--event-webhook-secret-file and --event-webhook-ca-file need --event-webhook")
	}
	if ec.opts.MaxAttempts < 1 || ec.opts.Backoff <= 0 || ec.opts.MaxBackoff < ec.opts.Backoff || ec.concurrency < 1 {
		return usage("--event-max-attempts and --event-concurrency must be at least 1, --event-max-backoff at least --event-backoff > 0")
	}
	if c.sftp.Listen != "" && c.sftp.HostKeyDir == "" {
		return usage("--sftp-listen needs --sftp-host-key-dir")
	}
	// The SFTP server shares the FTP login and idle limits.
	c.sftp.LoginTimeout = o.LoginTimeout
	c.sftp.IdleTimeout = o.IdleTimeout
	c.sftp.MaxAuthTries = o.MaxLoginAttempts
	c.sftp.ProxyProtocolFrom = o.ProxyProtocolFrom
	c.sftp.ProxyHeaderTimeout = o.ProxyHeaderTimeout
	return c, -1
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

func serve(c *config, stderr io.Writer) int {
	// SIGHUP is caught from the start: before the reload loop runs it waits in hup instead of ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log := newLogger(c, stderr)
	log.Info("configuration", "settings", c.effective)
	fail := func(code int, msg string, err error) int {
		log.Error(msg, "err", err)
		return code
	}
	guard, err := ftpfront.NewMountGuard(c.root, c.requireMount, log)
	if err != nil {
		return fail(exitConfig, "cannot serve root", err)
	}
	db, err := ftpfront.LoadUsers(c.users, c.root)
	if err != nil {
		return fail(exitConfig, "cannot load users", err)
	}
	access := ftpfront.NewAccess(db, c.access, log)
	deps := ftpfront.Deps{Auth: access, Admit: access, Fs: guard.FsFactory(ftpfront.DefaultFsFactory), Log: log}
	reg := metrics.NewRegistry()
	metrics.RegisterRuntime(reg)
	if c.auditLog != "" {
		var w io.Writer = stderr
		if c.auditLog != "-" {
			f, err := os.OpenFile(c.auditLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return fail(exitConfig, "cannot open audit log", err)
			}
			defer f.Close()
			w = f
		}
		deps.Audit = ftpfront.NewAuditLog(w)
	}
	if c.events.opts.Dir != "" {
		ev, err := openEvents(&c.events, reg, log)
		if err != nil {
			return fail(exitConfig, "cannot start events", err)
		}
		// Closed after the servers (deferred later, so run earlier): every session's last event is journaled.
		defer ev.Close()
		// The journal comes first: Record returns once the event is fsynced, before the client gets its answer.
		deps.Audit = teeAuditor{ev, deps.Audit}
	}
	// The metrics see every audit event before the audit log does; without an audit log they are its only reader.
	var fm *metrics.FTPFront
	deps.Audit, fm = ftpmetrics.Wire(reg, access, deps.Audit)
	srv, err := ftpfront.NewServer(c.opts, deps)
	if err != nil {
		return fail(exitConfig, "invalid configuration", err)
	}
	fm.WatchPanics(srv.Panics)
	var ssrv *sftpfront.Server
	if c.sftp.Listen != "" {
		ssrv, err = sftpfront.NewServer(c.sftp, sftpfront.Deps{Auth: access, Admit: access, Fs: deps.Fs, Audit: deps.Audit, Log: log})
		if err != nil {
			return fail(exitConfig, "invalid SFTP configuration", err)
		}
		// ftpfront_panics_total counts both protocols' recovered panics.
		fm.WatchPanics(func() int64 { return srv.Panics() + ssrv.Panics() })
	}
	if err := srv.Listen(); err != nil {
		return fail(exitListen, "cannot listen", err)
	}
	if ssrv != nil {
		if err := ssrv.Listen(); err != nil {
			srv.Close()
			return fail(exitListen, "cannot listen for SFTP", err)
		}
		defer ssrv.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Either server failing ends both.
	ctx, cancelServe := context.WithCancel(ctx)
	defer cancelServe()
	sftpDone := make(chan error, 1)
	if ssrv != nil {
		go func() {
			err := ssrv.Serve(ctx)
			if err != nil {
				cancelServe()
			}
			sftpDone <- err
		}()
	} else {
		sftpDone <- nil
	}
	if c.healthAddr != "" {
		ln, err := net.Listen("tcp", c.healthAddr)
		if err != nil {
			srv.Close()
			return fail(exitListen, "cannot listen for health checks", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", ftpfront.NewHealthHandler(c.root, ftpfront.HealthOptions{Timeout: 5 * time.Second, Interval: c.healthInterval, Guard: guard, Log: log}))
		mux.Handle("/metrics", reg.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		log.Info("health check listening", "addr", ln.Addr().String())
	}
	if c.metricsAddr != "" {
		ms, err := metrics.Serve(c.metricsAddr, reg.Handler(), log)
		if err != nil {
			srv.Close()
			return fail(exitListen, "cannot listen for metrics", err)
		}
		defer ms.Close()
	}
	if c.readyFile != "" {
		if err := writeReady(c.readyFile, srv, ssrv); err != nil {
			srv.Close()
			return fail(exitConfig, "cannot write ready file", err)
		}
	}
	go reloadOnHUP(ctx, hup, log, c, access, srv)
	log.Info("serving", "root", c.root, "mount_required", guard != nil, "allow_plain", c.opts.AllowPlain, "passive_ports",
		fmt.Sprintf("%d-%d", c.opts.PassivePortMin, c.opts.PassivePortMax), "sftp", c.sftp.Listen != "")
	err = srv.Serve(ctx)
	cancelServe()
	if serr := <-sftpDone; serr != nil {
		return fail(exitServe, "SFTP server stopped", serr)
	}
	if err != nil {
		return fail(exitServe, "server stopped", err)
	}
	log.Info("shut down")
	return exitOK
}

// openEvents builds the sinks (the sinks file, then --event-webhook and --event-command) and opens the journal.
func openEvents(ec *eventsConfig, reg *metrics.Registry, log *slog.Logger) (*events.Events, error) {
	var sinks []events.SinkConfig
	if ec.sinksFile != "" {
		s, err := events.LoadSinksFile(ec.sinksFile)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s...)
	}
	if ec.webhook != "" {
		sc, err := events.SinkSpec{Name: "webhook", Filter: ec.filter, Concurrency: ec.concurrency,
			Webhook: &events.WebhookSpec{URL: ec.webhook, SecretFile: ec.webhookSecret, CAFile: ec.webhookCA, Timeout: ec.webhookTimeout}}.Build()
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, sc)
	}
	if ec.command != "" {
		sc, err := events.SinkSpec{Name: "command", Filter: ec.filter, Concurrency: ec.concurrency,
			Command: &events.CommandSpec{Argv: strings.Fields(ec.command), Timeout: ec.commandTimeout}}.Build()
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, sc)
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name
	}
	o := ec.opts
	o.Sinks, o.Log, o.Observer = sinks, log, ftpmetrics.Events(reg, names)
	ev, err := events.Open(o)
	if err != nil {
		return nil, err
	}
	reg.CounterFunc("ftpfront_event_journal_errors_total", "Event records that could not be written to the journal "+
		"(delivered from memory only).", ev.JournalErrors)
	log.Info("events", "dir", o.Dir, "sinks", strings.Join(names, ","), "max_attempts", o.MaxAttempts)
	return ev, nil
}

// teeAuditor hands each event to every non-nil Auditor, in order.
type teeAuditor []ftpfront.Auditor

// Record implements ftpfront.Auditor.
func (t teeAuditor) Record(e ftpfront.Event) {
	for _, a := range t {
		if a != nil {
			a.Record(e)
		}
	}
}

// reloadOnHUP runs reload for every SIGHUP until ctx ends. Signals that arrive during a reload are merged into
// one more reload.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, log *slog.Logger, c *config, access *ftpfront.Access, srv *ftpfront.Server) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload(log, c, access, srv)
		}
	}
}

// reload re-reads the users file and the TLS certificate and key. Each that fails to load is kept as it was,
// with one ERROR line naming the file and the cause; the sessions in progress go on either way (those whose
// account was removed or changed end at their next command, see ftpfront.AccountChecker). The last line,
// "reload done", tells how each part went.
func reload(log *slog.Logger, c *config, access *ftpfront.Access, srv *ftpfront.Server) {
	log.Info("reload requested (SIGHUP)")
	users, cert := "reloaded", "reloaded"
	if db, err := ftpfront.LoadUsers(c.users, c.root); err != nil {
		users = "kept"
		log.Error("reload: keeping the previous users", "file", c.users, "err", err)
	} else {
		access.SetUsers(db)
		log.Info("reload: users", "file", c.users, "users", db.Len())
	}
	switch err := srv.ReloadCertificate(); {
	case c.opts.TLSCert == "":
		cert = "none"
	case err != nil:
		cert = "kept"
		log.Error("reload: keeping the previous TLS certificate", "file", c.opts.TLSCert, "key", c.opts.TLSKey, "err", err)
	}
	log.Info("reload done", "users", users, "certificate", cert)
}

// writeReady writes "explicit=ADDR", "implicit=ADDR" and "sftp=ADDR" lines (those that listen), atomically
// (rename), so a reader never sees a partial file.
func writeReady(path string, srv *ftpfront.Server, ssrv *sftpfront.Server) error {
	var b strings.Builder
	if a := srv.Addr(); a != nil {
		fmt.Fprintf(&b, "explicit=%s\n", a)
	}
	if a := srv.ImplicitAddr(); a != nil {
		fmt.Fprintf(&b, "implicit=%s\n", a)
	}
	if ssrv != nil {
		fmt.Fprintf(&b, "sftp=%s\n", ssrv.Addr())
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// passwd reads a password (from the terminal without echo, twice; or one line from stdin when it is not a
// terminal) and prints its hash for the users file.
func passwd(stdin *os.File, stdout, stderr io.Writer) int {
	var pw string
	if term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "ftpfront passwd: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "ftpfront passwd: %v\n", err)
			return exitUsage
		}
		if string(a) != string(b) {
			fmt.Fprintln(stderr, "ftpfront passwd: passwords differ")
			return exitUsage
		}
		pw = string(a)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(stderr, "ftpfront passwd: %v\n", err)
			return exitUsage
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		fmt.Fprintln(stderr, "ftpfront passwd: empty password")
		return exitUsage
	}
	h, err := ftpfront.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "ftpfront passwd: %v\n", err)
		return exitConfig
	}
	fmt.Fprintln(stdout, h)
	return exitOK
}
