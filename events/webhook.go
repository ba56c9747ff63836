package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// SignatureHeader carries the webhook body's HMAC-SHA256: "sha256=" and 64 hex digits.
const SignatureHeader = "X-S3ftp-Signature"

// Webhook POSTs each record's JSON to a URL. A 2xx answer acknowledges the record; any other status, a redirect,
// a TLS or connection error or a timeout is a failed attempt. TLS certificates are always verified.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
}

// WebhookConfig configures NewWebhook.
type WebhookConfig struct {
	// URL is the http or https endpoint.
	URL string
	// Secret is the HMAC-SHA256 key of the SignatureHeader; empty sends no signature.
	Secret []byte
	// CAFile, when set, is a PEM file of the CA certificates the server's certificate must chain to, instead
	// of the system's roots.
	CAFile string
	// Timeout bounds one attempt, from connecting to reading the answer (default 10s).
	Timeout time.Duration
}

// NewWebhook checks cfg and builds the sink.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want http:// or https://HOST/...", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhook CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhook CA file %s: no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &Webhook{
		url:    cfg.URL,
		secret: cfg.Secret,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect would turn the POST into a GET elsewhere: it is a failed attempt instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Sign returns the SignatureHeader value for body under secret. Receivers compute the same over the raw body and
// compare with hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver implements Sink. Besides the signature it sends X-S3ftp-Event (the kind) and X-S3ftp-Event-Id.
func (w *Webhook) Deliver(ctx context.Context, body []byte, r *Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "s3ftp-events/1")
	req.Header.Set("X-S3ftp-Event", r.Kind)
	req.Header.Set("X-S3ftp-Event-Id", r.ID)
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s: %q", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// ReadSecret reads a secret file, without a trailing newline. An empty file is an error.
func ReadSecret(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, errors.New("secret file " + file + " is empty")
	}
	return b, nil
}
