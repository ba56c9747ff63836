// Package sftpfront serves SFTP over SSH from the same users, bans, jails and audit log as package ftpfront.
//
// It is a translator: golang.org/x/crypto/ssh carries the connection, pkg/sftp's request server decodes the
// SFTP packets and scp.go speaks the legacy scp protocol; this package maps them onto ftpfront's access layer
// (Authenticator, Admitter, Auditor) and file seam (FsFactory: the user's JailFs, behind the MountGuard). It
// knows nothing about S3.
//
// # Invariants
//
//   - One access layer: a connection is admitted by the same Admitter as FTPS connections (one ban table, one
//     connection limit), and a password (SSH "password" or a keyboard-interactive prompt) is checked by the same
//     Authenticator (refused names, failed-login delay, failures counted towards the shared ban). Public keys
//     come from the same users file (authorized_keys, KeyAuthenticator); a refused key is not counted.
//   - Behind a load balancer, Options.ProxyProtocolFrom works as ftpfront's (ftpfront.ProxyProtocol): a
//     connection from those networks must open with a PROXY v1/v2 header, whose source is then the client's
//     address for Admit, authentication, bans, logs and audit; one without is closed before the SSH version
//     line and logged; a header from elsewhere ends the connection after the version line, logged once.
//   - Only the "sftp" subsystem and scp run. An exec request runs only an scp command: "scp", the flags -t or
//     -f with -r, -p, -d, -v, and paths, split as a shell would split them but never run by one (scp.go). Shell,
//     every other exec, pty, X11 and agent requests are answered false; channel types other than "session"
//     (port forwarding) and every global request (tcpip-forward) are refused.
//   - SCP follows the SFTP rules: the same jail, read-only users refused before any data, the same audit
//     events (upload, download, mkdir), an upload's close error reported to the client as an scp error and the
//     file of a failed upload removed. -p sets the mode and times through Chmod and Chtimes after the close.
//     Wildcards in scp paths are refused (no shell expands them).
//   - Host keys: an ed25519 key and a 3072-bit RSA key (for clients without ed25519) are generated on first
//     start into the host key directory (mode 0600) and reused afterwards; their SHA256 fingerprints are logged
//     at start. Only modern algorithms are offered: mlkem768x25519/curve25519 key exchange, AES-GCM ciphers
//     (chacha20-poly1305 is slower here: x/crypto/ssh has no amd64 assembly for it, and clients prefer it when
//     offered), ETM MACs, RSA signatures with SHA-2. Options.LegacyAlgorithms adds, after them, NIST ECDH and
//     Diffie-Hellman key exchanges, chacha20-poly1305, AES-CTR, HMAC-SHA2/SHA1 without ETM and ssh-rsa
//     signatures.
//   - statvfs@openssh.com checks the path through the jail, then answers with the statfs of the home's real
//     directory below it (on the mount: what s3mount reports); read-only users see ST_RDONLY.
//   - Paths are virtual: "/" is the user's home. pkg/sftp cleans every path against "/", so ".." never climbs
//     above it, and the JailFs refuses symbolic links leading out. Errors sent to the client name no real path.
//   - Read-only users get SSH_FX_PERMISSION_DENIED on every request that would change the file system.
//     Symbolic and hard link requests get SSH_FX_OP_UNSUPPORTED.
//   - READ and WRITE packets wait for the OPENs sent before them to be answered (gate.go): pkg/sftp would
//     otherwise race on a handle a client guessed before its OPEN completed. Honest clients never wait.
//   - Writes reach the file in order: each open file has a reorder window (Options.ReorderWindow, 4 MiB by
//     default) that holds writes arriving ahead of the written position; a write outside it fails with a clear
//     message and fails the upload (reorder.go). Memory per open file is bounded by the window, per connection by
//     Options.MaxUploads × the window, per server by that × the connection limit (no shared budget yet).
//   - After a reload removed or changed the account (ftpfront.AccountChecker), every new request is refused
//     with SSH_FX_PERMISSION_DENIED; requests on files already open go on, and once none is open the
//     connection is closed.
//   - A connection that has not authenticated within Options.LoginTimeout is closed; it may open at most
//     Options.MaxChannels session channels at once.
//   - An upload answered SSH_FX_OK on close is complete: close returns the file's close error (on the mount,
//     close completes the S3 upload). A new or truncated file whose upload failed (refused or failed write,
//     gap never filled, connection lost, close error) is removed, as ftpfront's STOR removes its partial file.
//
// # Requests and the file operations they perform
//
//	OPEN read            Fs.Open; READ → ReadAt
//	OPEN write           Fs.OpenFile (O_CREATE, O_TRUNC, O_EXCL as asked; APPEND or no TRUNC continues at the
//	                     file's size, unless the first write lands before it: then the file is rewritten from
//	                     0, as scp in SFTP mode does); WRITE → reorder window → WriteAt; CLOSE → Close
//	OPENDIR, READDIR     Fs.Open + Readdir, read in pieces as the client asks (a large directory is not loaded
//	                     whole)
//	STAT, LSTAT, FSTAT   Fs.Stat (LSTAT uses Lstat where the file system has one)
//	REALPATH             lexical: the path cleaned against "/"
//	SETSTAT, FSETSTAT    size: Truncate; permissions: Chmod; times: Chtimes; uid/gid ignored. During an upload
//	                     of the path: the size is applied by the upload before its close, the times are set
//	                     again after it (WinSCP sets them before writing)
//	MKDIR                Fs.Mkdir(0755)
//	RMDIR                Fs.Stat (must be a directory) + Remove
//	REMOVE               Fs.Stat (must not be a directory) + Remove
//	RENAME               Fs.Stat (the target must not exist, as SFTP v3 says) + Rename
//	posix-rename         Fs.Rename (replaces the target)
//	SYMLINK, LINK        SSH_FX_OP_UNSUPPORTED; READLINK likewise
//	statvfs@openssh.com  Fs.Stat, then statfs(2) of the real path
//
// # Not yet
//
// Requiring both a key and the password, a memory budget shared by all open files (each has its own window),
// and the idle timeout.
package sftpfront
