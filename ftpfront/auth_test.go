package ftpfront

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// cheapHash returns an argon2id PHC hash of password with tiny parameters, so that tests verifying many logins
// stay fast; the verification path is the same as for production parameters.
func cheapHash(t testing.TB, password string) string {
	t.Helper()
	salt := make([]byte, 16)
	rand.Read(salt)
	p := argonParams{memory: 64, time: 1, threads: 1, salt: salt, keyLen: 32}
	h := p.encode(argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen))
	if err := checkHash(h); err != nil {
		t.Fatalf("cheapHash produced an invalid hash: %v", err)
	}
	return h
}

func TestHashPasswordRoundTrip(t *testing.T) {
	h1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) {
		t.Fatalf("hash %q is not a PHC argon2id string with the default parameters", h1)
	}
	ok, err := VerifyPassword(h1, "correct horse")
	if err != nil || !ok {
		t.Fatalf("VerifyPassword(right password) = %v, %v; want true, nil", ok, err)
	}
	ok, err = VerifyPassword(h1, "correct horsE")
	if err != nil || ok {
		t.Fatalf("VerifyPassword(wrong password) = %v, %v; want false, nil", ok, err)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of the same password are equal: the salt is not random")
	}
}

// The argon2id vector of the reference implementation (phc-winner-argon2 src/test.c): hashes written by other
// tools verify.
func TestVerifyArgon2idReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if ok, err := VerifyPassword(ref, "password"); err != nil || !ok {
		t.Fatalf("reference vector: got %v, %v; want true, nil", ok, err)
	}
	if ok, err := VerifyPassword(ref, "passwore"); err != nil || ok {
		t.Fatalf("reference vector, wrong password: got %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	// OpenBSD/John the Ripper bcrypt test vector, in the three accepted prefixes.
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		h := prefix + "05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
		if err := checkHash(h); err != nil {
			t.Fatalf("checkHash(%s...) = %v", prefix, err)
		}
		if ok, err := VerifyPassword(h, "U*U"); err != nil || !ok {
			t.Fatalf("%s vector: got %v, %v; want true, nil", prefix, ok, err)
		}
		if ok, err := VerifyPassword(h, "U*V"); err != nil || ok {
			t.Fatalf("%s vector, wrong password: got %v, %v; want false, nil", prefix, ok, err)
		}
	}
	gen, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(string(gen), "s3cret"); err != nil || !ok {
		t.Fatalf("generated bcrypt: got %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyRejectsBadHashes(t *testing.T) {
	good := cheapHash(t, "x")
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	bad := map[string]string{
		"empty":             "",
		"plain text":        "hunter2",
		"md5crypt":          "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
		"sha512crypt":       "$6$rounds=5000$salt$abc",
		"argon2i":           strings.Replace(good, "$argon2id$", "$argon2i$", 1),
		"bcrypt $2x$":       "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		"bcrypt short":      "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
		"bcrypt bad char":   "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe!",
		"bcrypt cost 31":    "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		"version 16":        with(2, "v=16"),
		"params order":      with(3, "t=1,m=64,p=1"),
		"params missing":    with(3, "m=64,t=1"),
		"threads 0":         with(3, "m=64,t=1,p=0"),
		"time 0":            with(3, "m=64,t=0,p=1"),
		"extra param":       with(3, "m=64,t=1,p=1,x=2"),
		"memory 4 GiB":      with(3, "m=4194304,t=1,p=1"),
		"memory below 8*p":  with(3, "m=8,t=1,p=2"),
		"time 1000":         with(3, "m=64,t=1000,p=1"),
		"salt padded":       with(4, parts[4]+"=="),
		"salt short":        with(4, "c2FsdA"),
		"key not base64":    with(5, "!!!!"),
		"key short":         with(5, "c2hvcnQ"),
		"extra field":       good + "$x",
		"negative memory":   with(3, "m=-64,t=1,p=1"),
		"trailing space":    good + " ",
		"leading space":     " " + good,
		"uppercase prefix":  strings.Replace(good, "argon2id", "ARGON2ID", 1),
		"missing separator": strings.TrimPrefix(good, "$"),
	}
	for name, h := range bad {
		if err := checkHash(h); err == nil {
			t.Errorf("%s: checkHash(%q) accepted a bad hash", name, h)
		}
		if ok, err := VerifyPassword(h, "x"); err == nil || ok {
			t.Errorf("%s: VerifyPassword = %v, %v; want false and an error", name, ok, err)
		}
	}
	if err := checkHash(good); err != nil {
		t.Fatalf("the unmodified hash is rejected: %v", err)
	}
}

func TestUnknownHashErrorDoesNotEchoSecret(t *testing.T) {
	err := checkHash("my-plain-password")
	if err == nil || strings.Contains(err.Error(), "my-plain-password") {
		t.Fatalf("error %v must exist and must not contain the configured value", err)
	}
}

func TestNewUserDB(t *testing.T) {
	root := t.TempDir()
	h := cheapHash(t, "pw")
	db, err := NewUserDB(root, []UserConfig{
		{Name: "alice", Password: h, Home: "alice"},
		{Name: "bob", Password: h, Home: "/shared/bob/", ReadOnly: true},
		{Name: "carol", Password: h, Home: "/"},
		{Name: "dave", Password: h, Home: "x/../dave"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]User{
		"alice": {Name: "alice", Home: filepath.Join(root, "alice")},
		"bob":   {Name: "bob", Home: filepath.Join(root, "shared", "bob"), ReadOnly: true},
		"carol": {Name: "carol", Home: root},
		"dave":  {Name: "dave", Home: filepath.Join(root, "dave")},
	}
	if db.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", db.Len(), len(want))
	}
	for name, w := range want {
		u := db.lookup(name)
		if u == nil || u.user != w {
			t.Errorf("user %s = %+v, want %+v", name, u, w)
		}
	}
	if db.lookup("Alice") != nil {
		t.Error("names must match case-sensitively")
	}
}

func TestNewUserDBErrors(t *testing.T) {
	root := t.TempDir()
	h := cheapHash(t, "pw")
	cases := []struct {
		name  string
		users []UserConfig
		want  string // substring of the error
	}{
		{"home ../", []UserConfig{{Name: "a", Password: h, Home: "../etc"}}, `user "a": home: "../etc" escapes the root`},
		{"home /../", []UserConfig{{Name: "a", Password: h, Home: "/../etc"}}, "escapes the root"},
		{"home a/../../", []UserConfig{{Name: "a", Password: h, Home: "a/../../x"}}, "escapes the root"},
		{"home ..", []UserConfig{{Name: "a", Password: h, Home: ".."}}, "escapes the root"},
		{"home reserved", []UserConfig{{Name: "a", Password: h, Home: "/" + HealthDir}}, "reserved for the health probe"},
		{"home inside reserved", []UserConfig{{Name: "a", Password: h, Home: "x/../" + HealthDir + "/in"}}, "reserved for the health probe"},
		{"home empty", []UserConfig{{Name: "a", Password: h}}, "home: empty"},
		{"duplicate", []UserConfig{{Name: "a", Password: h, Home: "a"}, {Name: "a", Password: h, Home: "b"}}, `user #2: user "a": duplicate name`},
		{"empty hash", []UserConfig{{Name: "a", Home: "a"}}, `user "a": password: empty hash`},
		{"plain password", []UserConfig{{Name: "a", Password: "secret", Home: "a"}}, "not a password hash"},
		{"unknown hash", []UserConfig{{Name: "a", Password: "$5$abc$def", Home: "a"}}, `unknown hash format "$5$"`},
		{"empty name", []UserConfig{{Password: h, Home: "a"}}, "empty user name"},
		{"name with space", []UserConfig{{Name: "a b", Password: h, Home: "a"}}, "space or control"},
		{"name with newline", []UserConfig{{Name: "a\nb", Password: h, Home: "a"}}, "space or control"},
		{"name too long", []UserConfig{{Name: strings.Repeat("a", 200), Password: h, Home: "a"}}, "longer than"},
	}
	for _, c := range cases {
		_, err := NewUserDB(root, c.users)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
	if _, err := NewUserDB("", nil); err == nil {
		t.Error("empty root accepted")
	}
}

// writeUsersFile writes content to a users file in a new temporary directory and returns its path.
func writeUsersFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadUsers(t *testing.T) {
	root := t.TempDir()
	h := cheapHash(t, "pw")
	p := writeUsersFile(t, "users:\n"+
		"  - name: alice\n    password: '"+h+"'\n    home: alice\n"+
		"  - name: bob\n    password: '"+h+"'\n    home: /pub\n    read_only: true\n")
	db, err := LoadUsers(p, root)
	if err != nil {
		t.Fatal(err)
	}
	if db.Root() != root || db.Len() != 2 {
		t.Fatalf("Root, Len = %q, %d; want %q, 2", db.Root(), db.Len(), root)
	}
	if u := db.lookup("bob"); u == nil || !u.user.ReadOnly || u.user.Home != filepath.Join(root, "pub") {
		t.Fatalf("bob = %+v", u)
	}
	if ok, err := VerifyPassword(db.lookup("alice").hash, "pw"); !ok || err != nil {
		t.Fatalf("alice's hash does not verify: %v, %v", ok, err)
	}
}

func TestLoadUsersErrors(t *testing.T) {
	root := t.TempDir()
	h := cheapHash(t, "pw")
	entry := func(name, home string) string {
		return "  - name: " + name + "\n    password: '" + h + "'\n    home: " + home + "\n"
	}
	cases := []struct {
		name, content, want string
	}{
		{"escaping home", "users:\n" + entry("alice", "alice") + entry("eve", "../../etc"),
			`:5: user "eve": home: "../../etc" escapes the root`},
		{"duplicate", "users:\n" + entry("alice", "a") + entry("bob", "b") + entry("alice", "c"),
			`:8: user "alice": duplicate name`},
		{"empty hash", "users:\n  - name: alice\n    password: ''\n    home: a\n", `:2: user "alice": password: empty hash`},
		{"unknown hash", "users:\n  - name: alice\n    password: '$1$x$y'\n    home: a\n", `:2: user "alice": password: unknown hash format`},
		{"misspelt key", "users:\n  - name: alice\n    password: '" + h + "'\n    home: a\n    readonly: true\n",
			`:5: unknown key "readonly"`},
		{"unknown top-level key", "userz: []\n", "field userz not found"},
		{"no users", "users: []\n", "no users"},
		{"entry not a mapping", "users:\n  - alice\n", ":2: user entry must be a mapping"},
		{"bad read_only", "users:\n  - name: alice\n    password: '" + h + "'\n    home: a\n    read_only: maybe\n", "users file"},
		{"not yaml", "users: [\n", "users file"},
	}
	for _, c := range cases {
		_, err := LoadUsers(writeUsersFile(t, c.content), root)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing.yaml"), root); err == nil {
		t.Error("missing file accepted")
	}
}

// The shipped example must stay loadable.
func TestExampleUsersFileLoads(t *testing.T) {
	db, err := LoadUsers(filepath.Join("..", "scripts", "ftpfront-users.example.yaml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if db.Len() == 0 {
		t.Fatal("example has no users")
	}
}

func TestDummyHashMatchesConfiguredCost(t *testing.T) {
	argonUser := cheapHash(t, "pw")
	db, err := NewUserDB(t.TempDir(), []UserConfig{{Name: "a", Password: argonUser, Home: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	pu, _, _ := parseArgon2id(argonUser)
	pd, _, err := parseArgon2id(db.dummyHash)
	if err != nil {
		t.Fatalf("dummy hash %q: %v", db.dummyHash, err)
	}
	if pu.memory != pd.memory || pu.time != pd.time || pu.threads != pd.threads || pu.keyLen != pd.keyLen {
		t.Fatalf("dummy parameters %+v differ from the account's %+v", pd, pu)
	}

	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	db, err = NewUserDB(t.TempDir(), []UserConfig{{Name: "a", Password: string(bc), Home: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcryptCost(db.dummyHash); err != nil || cost != 5 {
		t.Fatalf("bcrypt dummy cost = %d, %v; want 5", cost, err)
	}
}
