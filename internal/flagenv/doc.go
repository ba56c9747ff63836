// Package flagenv layers a configuration file and the environment under a command's flags, so s3mount and
// ftpfront can be configured the same way from a shell, a systemd unit (Environment=, EnvironmentFile=) or a
// file in /etc.
//
// # Precedence
//
// For every flag, the first source that has a value wins:
//
//  1. the command line (flags the FlagSet parsed),
//  2. the environment: PREFIX_NAME, the flag's long name upper-cased with '-' and '.' turned into '_'
//     (S3MOUNT_MEMORY_BUDGET for --memory-budget, FTPFRONT_PASSIVE_PORTS for --passive-ports),
//  3. the configuration file,
//  4. the flag's default.
//
// Only the winning value is passed to the flag's Set, once, so flags that accumulate values see one source,
// never a mix.
//
// # File format
//
// One setting per line, "key = value" or "key: value"; the key is a flag's long name without dashes. Blank lines
// and lines whose first non-blank character is '#' are ignored; in an unquoted value, " #" starts a trailing
// comment (so "key =  # note" sets an empty value, and a value starting with '#' must be quoted). A value may be wrapped in double quotes (Go escapes allowed) or single quotes (taken literally) to
// keep leading or trailing blanks or a '#'. A boolean flag may be given as a bare key, meaning true. Example:
//
//	# /etc/s3ftp/ftpfront.conf
//	listen = 0.0.0.0:21
//	passive-ports: 40000-40099   # open these in the firewall
//	allow-plain
//
// # Errors
//
// Everything wrong in the file or in a value is an error, never a silent default: an unknown key names file:line,
// a key given twice names both lines, a bad value names the key, the value and its source (file:line or the
// environment variable). A variable PREFIX_X that matches no flag is not an error, because units and wrappers
// keep variables of their own under the same prefix; it is logged (slog.Warn, one line naming every such
// variable) and listed in Effective.UnknownEnv. PREFIX_CONFIG names the file and is never reported.
//
// # Effective configuration
//
// Load returns an Effective listing every flag's final value and where it came from; its WriteTo prints it in
// the file format above (so it can be pasted into a file), with secrets redacted (see Secret), and it is a
// slog.LogValuer for one start-up log line of the settings that are not defaults.
package flagenv
