package ftpfront

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync/atomic"
	"time"
)

// TLSConfig builds the one *tls.Config the server uses for control and data connections: TLS 1.2 or newer
// (1.2 with ECDHE and AEAD suites only, unless TLSLegacyCiphers), session tickets on (so clients can resume the control session's TLS session on data connections). The
// certificate is handed to each handshake by GetCertificate. It returns nil, nil when no certificate is
// configured (plain FTP only). A Server built from Options (no Deps.TLS) can replace the certificate while it
// runs: Server.ReloadCertificate.
func (o *Options) TLSConfig(log *slog.Logger) (*tls.Config, error) {
	c, _, err := o.tlsConfig(log)
	return c, err
}

// tlsConfig is TLSConfig plus the certSource behind its GetCertificate.
func (o *Options) tlsConfig(log *slog.Logger) (*tls.Config, *certSource, error) {
	src := &certSource{certFile: o.TLSCert, keyFile: o.TLSKey, log: log}
	switch {
	case o.TLSCert != "":
		c, err := loadCertificate(o.TLSCert, o.TLSKey, time.Time{})
		if err != nil {
			return nil, nil, err
		}
		src.set(c, false)
	case o.TLSSelfSigned:
		c, err := SelfSignedCertificate()
		if err != nil {
			return nil, nil, fmt.Errorf("generate self-signed certificate: %w", err)
		}
		src.set(&c, true)
	default:
		return nil, nil, nil
	}
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: src.get,
	}
	if !o.TLSLegacyCiphers {
		c.CipherSuites = modernCipherSuites
	}
	return c, src, nil
}

// modernCipherSuites are the TLS 1.2 suites offered by default: ECDHE key exchange (forward secrecy) with an
// AEAD cipher. TLS 1.3 suites are not configurable and are all AEAD.
var modernCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// certSource holds the certificate every new TLS handshake (control and data connections) is served; reload
// replaces it, so handshakes after a reload get the new certificate while connections already established keep
// theirs. TLS session tickets stay valid across a reload: their keys do not depend on the certificate.
type certSource struct {
	certFile, keyFile string // empty for a self-signed certificate, which reload keeps
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
}

// get is the tls.Config.GetCertificate callback.
func (c *certSource) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// set makes cert the one served and logs its fingerprint and expiry.
func (c *certSource) set(cert *tls.Certificate, selfSigned bool) {
	c.cur.Store(cert)
	if len(cert.Certificate) == 0 {
		return
	}
	sum := sha256.Sum256(cert.Certificate[0])
	attrs := []any{"sha256", fingerprint(sum[:]), "self_signed", selfSigned}
	if cert.Leaf != nil {
		attrs = append(attrs, "serial", cert.Leaf.SerialNumber.String(), "not_after", cert.Leaf.NotAfter.UTC())
	}
	if c.certFile != "" {
		attrs = append(attrs, "file", c.certFile)
	}
	c.log.Info("TLS certificate", attrs...)
}

// reload reads the certificate and key files again and serves them from the next handshake on. On an error
// (unreadable file, no PEM, key not matching, a certificate already expired) the certificate served so far
// stays. A self-signed certificate is kept as it is.
func (c *certSource) reload(now time.Time) error {
	if c.certFile == "" {
		return nil
	}
	cert, err := loadCertificate(c.certFile, c.keyFile, now)
	if err != nil {
		return err
	}
	c.set(cert, false)
	return nil
}

// loadCertificate reads a PEM certificate chain and its key. With a non-zero now, a leaf certificate that has
// expired by then is refused. Errors name both files.
func loadCertificate(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	if !now.IsZero() && c.Leaf != nil && now.After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("load TLS certificate %s: expired on %s", certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// SelfSignedCertificate returns a fresh ECDSA P-256 certificate for "localhost", valid for one year, kept in
// memory only.
func SelfSignedCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ftpfront self-signed"},
		DNSNames:     []string{"localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func fingerprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
