package ftpfront

// Accounts and password hashes.
//
// A user database never changes once built (LoadUsers, NewUserDB), so a *UserDB is safe for concurrent use without
// locks; a reload builds a new one and hands it to Access.SetUsers, which swaps it whole. Every entry has a password hash in one of two formats: argon2id in the PHC string
// format (what HashPassword produces) or bcrypt ($2a$, $2b$, $2y$, e.g. from `htpasswd -nB`). A file with an empty,
// unknown or malformed hash, a duplicate name, or a home outside the served root or inside its reserved HealthDir is refused as a whole: a typo in
// the users file never silently opens or closes an account. Homes are checked lexically (after cleaning, a home
// must not climb out of the root with ".."); confinement of the session's file operations, including symbolic
// links, is the jail's job (fs.go).

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// UserConfig is one account as written in the users file.
type UserConfig struct {
	// Name is the login name. It is matched exactly (case-sensitive); it must be non-empty, at most 128 bytes
	// of UTF-8 and free of spaces and control characters.
	Name string `yaml:"name"`
	// Password is the password hash (argon2id PHC string or bcrypt), never the password itself.
	Password string `yaml:"password"`
	// Home is the user's directory relative to the served root; it must not be empty (write "/" to give the user
	// the whole root). A leading "/" is allowed and still means "relative to the root".
	Home string `yaml:"home"`
	// ReadOnly users cannot change the file system.
	ReadOnly bool `yaml:"read_only"`
	// AuthorizedKeys are SSH public keys, one authorized_keys line each ("ssh-ed25519 AAAA... comment"), that
	// log the user in over SFTP without the password. Lines with options (from=, command=, ...) are refused:
	// none is implemented, and ignoring one would grant more than it says.
	AuthorizedKeys []string `yaml:"authorized_keys"`
}

// UserDB holds the accounts. It is immutable after construction and safe for concurrent use.
type UserDB struct {
	root  string
	users map[string]*dbUser
	// dummyHash has the format and cost of the configured hashes; Access verifies unknown names against it so
	// that a wrong name costs the same time as a wrong password.
	dummyHash string
}

// dbUser is a validated account: the session's User plus its password hash and SSH keys. It stays comparable
// (Access.AccountValid compares accounts whole).
type dbUser struct {
	user User
	hash string
	keys string // authorized keys, each "type base64" without comment, one per line; "" for none
}

// maxUserNameLen bounds login names; longer names are configuration mistakes or attacks.
const maxUserNameLen = 128

// maxPasswordLen bounds the password a client may submit; hashing megabytes per attempt would be a cheap way to
// burn the server's CPU.
const maxPasswordLen = 1024

// Argon2id parameters used by HashPassword: the OWASP password storage recommendation (19 MiB, 2 passes, 1 lane),
// chosen so that a login costs a few tens of milliseconds and little memory; Access additionally bounds how many
// verifications run at once.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds accepted when verifying argon2id hashes from the users file: a hash demanding gigabytes or minutes per
// login is refused at load time rather than turning every login into a denial of service.
const (
	argonMaxMemoryKiB = 1 << 20 // 1 GiB
	argonMaxTime      = 64
	argonMinSaltLen   = 8
	argonMinKeyLen    = 16
	argonMaxKeyLen    = 128
	bcryptMaxCost     = 16
)

// usersFile is the top level of the YAML users file.
type usersFile struct {
	Users []yaml.Node `yaml:"users"`
}

// LoadUsers reads the YAML users file at path ({users: [{name, password, home, read_only, authorized_keys}, ...]})
// and builds the
// database for the served root. Errors name the file, the line and the user. Unknown keys are errors, so that a
// misspelt "read_only" cannot silently grant write access. A file readable by other users is loaded with a
// warning in the log.
func LoadUsers(path, root string) (*UserDB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
		// Hashes are slow to crack, not impossible: they should not be readable by every local user.
		slog.Warn("users file is readable by other users; chmod 600 it", "path", path, "mode", fi.Mode().Perm())
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f usersFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	if len(f.Users) == 0 {
		return nil, fmt.Errorf("users file %s: no users", path)
	}
	users := make([]UserConfig, 0, len(f.Users))
	lines := make([]int, 0, len(f.Users))
	for i := range f.Users {
		n := &f.Users[i]
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("users file %s:%d: user entry must be a mapping", path, n.Line)
		}
		for k := 0; k+1 < len(n.Content); k += 2 {
			switch key := n.Content[k]; key.Value {
			case "name", "password", "home", "read_only", "authorized_keys":
			default:
				return nil, fmt.Errorf("users file %s:%d: unknown key %q", path, key.Line, key.Value)
			}
		}
		var uc UserConfig
		if err := n.Decode(&uc); err != nil {
			return nil, fmt.Errorf("users file %s:%d: %w", path, n.Line, err)
		}
		users = append(users, uc)
		lines = append(lines, n.Line)
	}
	db, err := newUserDB(root, users, func(i int) string { return fmt.Sprintf("users file %s:%d: ", path, lines[i]) })
	if err != nil {
		return nil, err
	}
	return db, nil
}

// NewUserDB validates users (see LoadUsers) and builds the database for the served root.
func NewUserDB(root string, users []UserConfig) (*UserDB, error) {
	return newUserDB(root, users, func(i int) string { return fmt.Sprintf("user #%d: ", i+1) })
}

// newUserDB is NewUserDB with a caller-chosen error prefix per entry (file and line, or the index).
func newUserDB(root string, users []UserConfig, where func(i int) string) (*UserDB, error) {
	if root == "" {
		return nil, errors.New("users: empty root")
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("users: root %q: %w", root, err)
	}
	db := &UserDB{root: absRoot, users: make(map[string]*dbUser, len(users))}
	for i, uc := range users {
		if err := checkUserName(uc.Name); err != nil {
			return nil, fmt.Errorf("%s%w", where(i), err)
		}
		if _, dup := db.users[uc.Name]; dup {
			return nil, fmt.Errorf("%suser %q: duplicate name", where(i), uc.Name)
		}
		if err := checkHash(uc.Password); err != nil {
			return nil, fmt.Errorf("%suser %q: password: %w", where(i), uc.Name, err)
		}
		home, err := resolveHome(absRoot, uc.Home)
		if err != nil {
			return nil, fmt.Errorf("%suser %q: home: %w", where(i), uc.Name, err)
		}
		keys, err := parseAuthorizedKeys(uc.AuthorizedKeys)
		if err != nil {
			return nil, fmt.Errorf("%suser %q: authorized_keys: %w", where(i), uc.Name, err)
		}
		db.users[uc.Name] = &dbUser{user: User{Name: uc.Name, Home: home, ReadOnly: uc.ReadOnly}, hash: uc.Password, keys: keys}
	}
	if len(users) > 0 {
		db.dummyHash, err = dummyHashLike(users[0].Password)
	} else {
		db.dummyHash, err = HashPassword(randomSecret())
	}
	if err != nil {
		return nil, fmt.Errorf("users: dummy hash: %w", err)
	}
	return db, nil
}

// Root returns the absolute served root the homes are relative to.
func (db *UserDB) Root() string { return db.root }

// Len returns the number of accounts.
func (db *UserDB) Len() int { return len(db.users) }

// lookup returns the account with exactly this name, or nil.
func (db *UserDB) lookup(name string) *dbUser { return db.users[name] }

// parseAuthorizedKeys validates authorized_keys lines and returns them in dbUser.keys form.
func parseAuthorizedKeys(lines []string) (string, error) {
	var b strings.Builder
	for i, l := range lines {
		key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return "", fmt.Errorf("key #%d: %w", i+1, err)
		}
		if len(options) > 0 {
			return "", fmt.Errorf("key #%d: options (%s) are not supported", i+1, strings.Join(options, ","))
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return "", fmt.Errorf("key #%d: one key per entry", i+1)
		}
		b.WriteString(authorizedKeyID(key))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// authorizedKeyID is a key as stored in dbUser.keys: "type base64".
func authorizedKeyID(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// hasKey reports whether key is one of u's authorized keys.
func (u *dbUser) hasKey(key ssh.PublicKey) bool {
	id := authorizedKeyID(key)
	for _, k := range strings.Split(u.keys, "\n") {
		if k != "" && subtle.ConstantTimeCompare([]byte(k), []byte(id)) == 1 {
			return true
		}
	}
	return false
}

// checkUserName enforces the name rules documented on UserConfig.Name.
func checkUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > maxUserNameLen:
		return fmt.Errorf("user name longer than %d bytes", maxUserNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("user name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("user name %q contains a space or control character", name)
		}
	}
	return nil
}

// resolveHome maps a configured home to an absolute path inside root, refusing homes that climb out of it or lie
// inside the reserved HealthDir.
func resolveHome(root, home string) (string, error) {
	if home == "" {
		return "", errors.New(`empty (write "/" for the whole root)`)
	}
	if strings.ContainsRune(home, 0) {
		return "", errors.New("contains a NUL byte")
	}
	rel := filepath.Clean(strings.TrimLeft(filepath.ToSlash(home), "/"))
	if rel == "" {
		rel = "."
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q escapes the root", home)
	}
	if rel == HealthDir || strings.HasPrefix(rel, HealthDir+"/") {
		return "", fmt.Errorf("%q is inside %s, reserved for the health probe", home, HealthDir)
	}
	return filepath.Join(root, rel), nil
}

// HashPassword returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, unpadded standard base64) with a fresh random salt.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: salt: %w", err)
	}
	p := argonParams{memory: argonMemoryKiB, time: argonTime, threads: argonThreads, salt: salt, keyLen: argonKeyLen}
	return p.encode(argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)), nil
}

// VerifyPassword reports whether password matches hash, which is an argon2id PHC string or a bcrypt hash
// ($2a$, $2b$, $2y$). The comparison is constant-time. An error means the hash itself is unusable (malformed,
// unknown format, parameters out of bounds), never that the password is wrong. As with every bcrypt
// implementation, only the first 72 bytes of a password checked against a bcrypt hash count.
func VerifyPassword(hash, password string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, key, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, p.keyLen)
		return subtle.ConstantTimeCompare(got, key) == 1, nil
	case isBcrypt(hash):
		if _, err := bcryptCost(hash); err != nil {
			return false, err
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("bcrypt hash: %w", err)
		}
		return true, nil
	default:
		return false, errUnknownHash(hash)
	}
}

// checkHash validates a configured hash without verifying any password.
func checkHash(hash string) error {
	switch {
	case hash == "":
		return errors.New("empty hash")
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, err := parseArgon2id(hash)
		return err
	case isBcrypt(hash):
		_, err := bcryptCost(hash)
		return err
	default:
		return errUnknownHash(hash)
	}
}

// errUnknownHash names the hash's scheme, never the hash or anything that could be a password typed by mistake.
func errUnknownHash(hash string) error {
	if strings.HasPrefix(hash, "$") {
		scheme, _, _ := strings.Cut(hash[1:], "$")
		if len(scheme) > 16 {
			scheme = scheme[:16]
		}
		return fmt.Errorf("unknown hash format %q (want argon2id or bcrypt)", "$"+scheme+"$")
	}
	return errors.New("not a password hash (want argon2id or bcrypt); never store plain passwords")
}

// isBcrypt reports whether hash has a bcrypt prefix this package accepts.
func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// bcryptCost validates the shape of a bcrypt hash ($2x$NN$ + 53 characters of bcrypt base64) and returns its cost.
func bcryptCost(hash string) (int, error) {
	const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	if len(hash) != 60 || hash[6] != '$' {
		return 0, errors.New("malformed bcrypt hash")
	}
	for i := 7; i < len(hash); i++ {
		if strings.IndexByte(bcryptAlphabet, hash[i]) < 0 {
			return 0, errors.New("malformed bcrypt hash")
		}
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0, fmt.Errorf("bcrypt hash: %w", err)
	}
	if cost > bcryptMaxCost {
		return 0, fmt.Errorf("bcrypt cost %d above the accepted maximum %d", cost, bcryptMaxCost)
	}
	return cost, nil
}

// argonParams are the parameters and salt of an argon2id hash.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	keyLen  uint32
}

// encode renders the parameters and key as a PHC string.
func (p argonParams) encode(key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(p.salt), b64.EncodeToString(key))
}

// parseArgon2id parses and bounds-checks an argon2id PHC string. Parameters must appear in the order m, t, p, as
// every common implementation writes them.
func parseArgon2id(hash string) (argonParams, []byte, error) {
	var p argonParams
	bad := func(why string) (argonParams, []byte, error) {
		return argonParams{}, nil, fmt.Errorf("malformed argon2id hash: %s", why)
	}
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + strconv.Quote(parts[2]))
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("want parameters m=..,t=..,p=..")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return bad("want parameters m=..,t=..,p=..")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		vals[i] = n
	}
	switch m, t, th := vals[0], vals[1], vals[2]; {
	case th < 1 || th > 255:
		return bad("p must be 1..255")
	case t < 1 || t > argonMaxTime:
		return bad(fmt.Sprintf("t must be 1..%d", argonMaxTime))
	case m < 8*th || m > argonMaxMemoryKiB:
		return bad(fmt.Sprintf("m must be 8*p..%d KiB", argonMaxMemoryKiB))
	default:
		p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(th)
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < argonMinSaltLen {
		return bad(fmt.Sprintf("salt must be unpadded base64 of at least %d bytes", argonMinSaltLen))
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < argonMinKeyLen || len(key) > argonMaxKeyLen {
		return bad(fmt.Sprintf("hash must be unpadded base64 of %d..%d bytes", argonMinKeyLen, argonMaxKeyLen))
	}
	p.salt, p.keyLen = salt, uint32(len(key))
	return p, key, nil
}

// dummyHashLike returns a hash of a random secret with the same scheme and cost as model, so that verifying an
// unknown name against it takes as long as verifying a real account. model has been validated by checkHash.
func dummyHashLike(model string) (string, error) {
	secret := randomSecret()
	if isBcrypt(model) {
		cost, err := bcryptCost(model)
		if err != nil {
			return "", err
		}
		h, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
		return string(h), err
	}
	p, _, err := parseArgon2id(model)
	if err != nil {
		return "", err
	}
	p.salt = make([]byte, len(p.salt))
	if _, err := rand.Read(p.salt); err != nil {
		return "", err
	}
	return p.encode(argon2.IDKey([]byte(secret), p.salt, p.time, p.memory, p.threads, p.keyLen)), nil
}

// randomSecret returns 32 random characters; crypto/rand never fails on supported platforms.
func randomSecret() string {
	return rand.Text()
}
