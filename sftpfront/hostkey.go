package sftpfront

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the name of the ed25519 host key in the host key directory (OpenSSH's private key format,
// readable by ssh-keygen); HostKeyFile+".pub" holds the public key in authorized_keys format.
const HostKeyFile = "ssh_host_ed25519_key"

// RSAHostKeyFile is the name of the RSA host key (3072 bits) beside HostKeyFile, for clients without ed25519;
// RSAHostKeyFile+".pub" holds its public key.
const RSAHostKeyFile = "ssh_host_rsa_key"

// rsaHostKeyBits is the size of a generated RSA host key, OpenSSH's default.
const rsaHostKeyBits = 3072

// LoadOrCreateHostKey returns the ed25519 host key in dir, generating it on first use (dir is created with mode
// 0700, the key written with mode 0600). created reports whether the key was generated. A key file that exists
// but cannot be parsed is an error, never silently replaced: clients would see a changed host key.
func LoadOrCreateHostKey(dir string) (signer ssh.Signer, created bool, err error) {
	return loadOrCreateKey(dir, HostKeyFile, func() (crypto.PrivateKey, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	})
}

// LoadOrCreateRSAHostKey returns the RSA host key in dir, generating it on first use, under the same rules as
// LoadOrCreateHostKey.
func LoadOrCreateRSAHostKey(dir string) (signer ssh.Signer, created bool, err error) {
	return loadOrCreateKey(dir, RSAHostKeyFile, func() (crypto.PrivateKey, error) {
		return rsa.GenerateKey(rand.Reader, rsaHostKeyBits)
	})
}

func loadOrCreateKey(dir, name string, generate func() (crypto.PrivateKey, error)) (ssh.Signer, bool, error) {
	if dir == "" {
		return nil, false, errors.New("host key directory not set")
	}
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("host key %s: %w", path, err)
		}
		return s, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("host key directory: %w", err)
	}
	priv, err := generate()
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "s3ftp sftpfront host key")
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	// O_EXCL: two daemons starting at once on one directory must not both write; the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKey(dir, name, generate)
	}
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644); err != nil {
		return nil, false, fmt.Errorf("host key %s.pub: %w", path, err)
	}
	return s, true, nil
}
