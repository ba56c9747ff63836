// Package ftpfront is a small, hardened FTP/FTPS server that serves an afero.Fs per user. In production the file
// system is a JailFs over a local directory (the s3mount mount); the package knows nothing about S3.
//
// # Commands and the file operations they perform
//
// Paths are virtual: "/" is the user's home, ".." never climbs above it, and replies only ever show virtual
// paths. Every path is cleaned by the session before it reaches the file system. The name HealthDir
// (".s3ftp-health") at the top of a home is reserved for the health probe (health.go): JailFs leaves it out of
// LIST, NLST, MLSD and STAT listings and answers every command on it or inside it (CWD, RETR, STOR, DELE, MKD,
// RNFR/RNTO, SIZE, ...) 550 "No such file or directory", as for a name that does not exist.
//
//	USER, PASS        Authenticator.Login; then FsFactory(user) opens the user's file system
//	AUTH TLS          TLS handshake on the control connection (refused if plaintext bytes follow AUTH)
//	PBSZ, PROT P|C    data connection protection (PROT C only with AllowPlain)
//	PWD, CWD, CDUP    Stat (must be a directory); the working directory lives in the session
//	XPWD XCWD XCUP    aliases
//	PASV, EPSV        listen on a passive port (peer-checked accept; closes the session's previous listener);
//	                  PORT, EPRT only with AllowActive
//	LIST, NLST, MLSD  Stat + Open + Readdir, sent over the data connection
//	MLST, STAT path   Stat (+ Readdir), answered on the control connection
//	SIZE, MDTM        Stat
//	MFMT, MDTM t p    Chtimes (mtime and atime set to t); the reply shows the time the file system kept
//	RETR              Open (+ Seek to the REST offset)
//	STOR              OpenFile(O_WRONLY|O_CREATE|O_TRUNC); with REST n: OpenFile(O_WRONLY|O_CREATE) + Seek(n)
//	APPE              OpenFile(O_WRONLY|O_CREATE|O_APPEND)
//	DELE              Stat (refuses directories) + Remove
//	RNFR, RNTO        Stat, then Rename
//	MKD, XMKD         Mkdir(0755)
//	RMD, XRMD         Stat (must be a directory) + Remove
//	HASH, OPTS HASH   Stat + Checksummer (s3mount's user.sha256/md5/crc32; draft-bryan-ftpext-hash): 213
//	                  "ALG 0-END HEX path"; 550 when the file has no stored checksum, never computed by reading it
//	XSHA256 XMD5 XCRC the same, one algorithm each: 250 HEX
//	ABOR              closes the running transfer's data connection (426 for the transfer, then 226)
//	NOOP SYST FEAT OPTS TYPE MODE STRU ALLO HELP QUIT REST   no file operation
//
// Replies: unknown verbs 502, bad arguments 501, out of sequence 503, not logged in 530, file errors 550 with a
// fixed text (the error itself, which may carry a real path, is only logged), storage unavailable (a MountGuard
// refused the operation) 451 "Storage unavailable, try again later". CR and LF in any echoed text are
// replaced by spaces, so a file name cannot inject a reply.
//
// # Invariants
//
//   - A control line longer than MaxLineLength is discarded while it arrives and answered 500; memory per
//     session is bounded.
//   - Without AllowPlain, USER needs TLS on the control connection (530) and every transfer needs PROT P (521).
//     The server accepts TLS 1.2 and newer only, with one *tls.Config for control and data connections; TLS
//     1.2 offers ECDHE suites with AEAD only unless Options.TLSLegacyCiphers.
//   - A passive data connection is accepted only from the control connection's IP address or a
//     PassiveAllowCIDR network; others are closed and logged while the listener keeps waiting for the client.
//     Active connections only go to the client's own address, port >= 1024.
//   - A passive listener holds its port only while it waits: it is closed when its data connection arrives, at
//     DataAcceptTimeout (counted from PASV/EPSV, and again from the transfer command; the transfer then answers
//     425), when the session arms another data connection or ends. A session holds at most one; a client
//     address (IPv4, or IPv6 /64) at most MaxPassivePerIP at a time, beyond which PASV and EPSV answer 425. So
//     idle clients cannot hold the passive port range for longer than DataAcceptTimeout.
//   - The health check (HealthHandler, /healthz) probes the root at most once per HealthOptions.Interval, in the
//     reserved HealthDir, never through a session: probes appear in no listing, audit record or transfer metric.
//   - Uploads answer 226 only after the file was closed without error and its audit event was recorded
//     (Auditor.Record returned); every upload that fails after the file was opened is audited too. A failed
//     write or close answers 451, a broken data connection or ABOR 426; a plain STOR then removes the partial
//     file, APPE and REST+STOR keep what was there.
//   - At most one transfer per session. It runs in its own goroutine so ABOR, STAT and NOOP are answered while
//     it runs; every other command waits until the transfer has sent its final reply.
//   - With a MountGuard (MountGuard.FsFactory; ftpfront --require-mount), no file operation reaches the served
//     root while it is not a mount point: every command that touches the file system is answered 451, and
//     refused uploads and downloads are audited. Nothing is written to the local directory beneath the mount.
//   - No panic ends the process: every goroutine the package starts runs under recovery (internal/safego), and
//     each recovered panic is logged once at ERROR with its stack. A panic in a command handler fails that
//     command: 451 and the session goes on once logged in, 421 and the session ends before login. Elsewhere in a
//     session: 421, the session ends. In a transfer: 451, the data connection is closed and an upload is ended
//     as a failed one (the file closed, a plain STOR's partial file removed). While setting up a connection
//     (Admitter included): that connection is closed and the accept loop goes on. Server.Panics counts these.
//     A panicking health probe answers 503 and a panicking audit writer loses its batch like a failed write;
//     both are logged but not counted (they belong to no Server).
//
// # Behind a load balancer: the PROXY protocol
//
// With Options.ProxyProtocolFrom (ftpfront --proxy-protocol-from) the balancers in those networks send a PROXY
// protocol header (v1 text or v2 binary, haproxy's send-proxy / send-proxy-v2, AWS NLB's proxy protocol v2)
// at the start of each control connection, explicit and implicit FTPS alike (before the TLS ClientHello), and
// on sftpfront's listener. Headers are parsed by github.com/pires/go-proxyproto; ProxyProtocol decides whom
// to trust.
//
//   - The header's source address is the client's address everywhere: Admit (bans, per-address connection
//     limits, the reserved slots for known addresses), Authenticator.Login's ip, the PASV host map, the
//     passive bound (MaxPassivePerIP), the data connection peer check, STAT's "Connected from", the audit log's
//     ip and every session log line (which also carries proxy=<balancer address>). One client guessing
//     passwords behind the balancer bans that client only.
//   - A connection from a trusted balancer must open with a header within ProxyHeaderTimeout (default 5s); one
//     that does not (nothing, an FTP command, a truncated header) is closed before the greeting, logged once
//     ("connection refused ... without a PROXY header") and starts no session. A LOCAL header (the balancer's
//     own health check) or "PROXY UNKNOWN" keeps the balancer's address. The header is read in a goroutine of
//     its own, so a slow balancer connection does not hold the accept loop.
//   - A header from any other address is never believed: the connection is closed at its first read (after
//     the 220 greeting on explicit FTPS, before the TLS handshake completes on implicit FTPS) and logged
//     ("PROXY header from an untrusted address"). Clients from there without a header are served as
//     themselves.
//   - Data connections: with ProxyProtocolData (--proxy-protocol-data) a passive data connection from a
//     trusted balancer must carry a header too, and is accepted only when the header's source is the control
//     connection's client (or inside PassiveAllowCIDR); another client of the same balancer racing for the port
//     is refused like a foreign address. Without it, passive connections are taken as they come (a balancer
//     must then not send headers on the passive range) and are checked by their TCP peer as before.
//   - Metrics carry no per-address labels; nothing there changes.
//
// # Reloading users and the certificate
//
// The accounts and the TLS certificate can change while sessions run (ftpfront reloads both on SIGHUP):
//
//   - Access.SetUsers replaces the accounts. Logins from then on see only the new ones: an added account can log
//     in, a removed one is refused like an unknown name. Lock an account by removing its entry or replacing its
//     hash.
//   - A session whose account was removed or changed (password hash, home or read-only flag differ) ends at its
//     next command: "421 Account removed or changed, closing control connection" (AccountChecker). A transfer
//     running at the time of the reload is not cut; the command after it gets the 421. The reply is 421 rather
//     than 530 because the session cannot go on with an account it no longer has, and a client that logs in
//     again gets the account as it now is. Sessions of unchanged accounts are not touched.
//   - Server.ReloadCertificate re-reads the certificate and key files. Every handshake after it (new control
//     connections, AUTH TLS, data connections of sessions already open) is served the new certificate through
//     tls.Config.GetCertificate; established connections keep theirs, and TLS sessions remain resumable.
//   - A users file or certificate that does not load is not applied: what was loaded before stays in use, and
//     the error names the file and the cause (ftpfront logs it as one ERROR line).
//
// # Limits
//
//   - Over plain FTP (AllowPlain, PROT C) a data connection closed early by the client cannot be told from a
//     complete upload; over TLS it can (no close_notify), and is answered 426 with the partial file removed.
//   - Only stream mode and file structure; TYPE A converts line ends, and SIZE is refused (550) in TYPE A.
//   - PASV announces IPv4 only; IPv6 clients use EPSV.
//   - The symlink check in JailFs and the operation it guards are two steps (see JailFs); so are the MountGuard
//     check and the operation (OpenFile checks again after opening; see fs_guard.go).
//   - One transfer per session; a second transfer command waits for the first to finish.
//
// # Concurrency and locks
//
// Per session: the command goroutine owns all session state; session.mu guards the running transfer; session.wmu
// serialises reply writes. Lock order: session.mu, then session.wmu. Server.mu guards the listener and session
// sets and is never held while calling into a session.
//
// # Timeouts
//
// IdleTimeout applies to the control connection while no transfer runs, LoginTimeout from connect to login,
// DataAcceptTimeout to establishing a data connection, DataTimeout to each read or write on a data connection
// and to each control reply write.
package ftpfront
