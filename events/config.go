package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// SinksFile is the YAML file of sinks (ftpfront --event-sinks):
//
//	sinks:
//	  - name: acme-import            # unique; names the ack file, metrics and log lines
//	    webhook:
//	      url: https://import.example.com/hooks/s3ftp
//	      secret_file: /etc/ftpfront/hook.secret   # HMAC key; X-S3ftp-Signature: sha256=HEX
//	      ca_file: /etc/ftpfront/import-ca.pem     # optional, instead of the system roots
//	      timeout: 10s
//	    filter:
//	      kinds: [upload_completed]
//	      users: [acme]
//	      paths: ["/in/*.csv"]
//	    concurrency: 1
//	  - name: archive
//	    command:
//	      argv: [/usr/local/bin/archive-event, --queue, imports]
//	      timeout: 60s
//	    concurrency: 4               # at most 4 children at once
//
// Each sink has exactly one of webhook and command. Unknown keys are errors.
type SinksFile struct {
	Sinks []SinkSpec `yaml:"sinks"`
}

// SinkSpec is one sink of a SinksFile.
type SinkSpec struct {
	Name        string       `yaml:"name"`
	Webhook     *WebhookSpec `yaml:"webhook"`
	Command     *CommandSpec `yaml:"command"`
	Filter      Filter       `yaml:"filter"`
	Concurrency int          `yaml:"concurrency"`
}

// WebhookSpec is the webhook part of a SinkSpec (see WebhookConfig).
type WebhookSpec struct {
	URL        string        `yaml:"url"`
	SecretFile string        `yaml:"secret_file"`
	CAFile     string        `yaml:"ca_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

// CommandSpec is the command part of a SinkSpec (see CommandConfig).
type CommandSpec struct {
	Argv    []string      `yaml:"argv"`
	Timeout time.Duration `yaml:"timeout"`
}

// Build checks the spec, reads the secret file and returns the sink.
func (s SinkSpec) Build() (SinkConfig, error) {
	sc := SinkConfig{Name: s.Name, Filter: s.Filter, Concurrency: s.Concurrency}
	if err := s.Filter.Validate(); err != nil {
		return sc, fmt.Errorf("sink %q: %w", s.Name, err)
	}
	switch {
	case (s.Webhook == nil) == (s.Command == nil):
		return sc, fmt.Errorf("sink %q: want exactly one of webhook and command", s.Name)
	case s.Webhook != nil:
		cfg := WebhookConfig{URL: s.Webhook.URL, CAFile: s.Webhook.CAFile, Timeout: s.Webhook.Timeout}
		if s.Webhook.SecretFile != "" {
			sec, err := ReadSecret(s.Webhook.SecretFile)
			if err != nil {
				return sc, fmt.Errorf("sink %q: %w", s.Name, err)
			}
			cfg.Secret = sec
		}
		w, err := NewWebhook(cfg)
		if err != nil {
			return sc, fmt.Errorf("sink %q: %w", s.Name, err)
		}
		sc.Sink = w
	default:
		c, err := NewCommand(CommandConfig{Argv: s.Command.Argv, Timeout: s.Command.Timeout})
		if err != nil {
			return sc, fmt.Errorf("sink %q: %w", s.Name, err)
		}
		sc.Sink = c
	}
	return sc, nil
}

// LoadSinksFile reads a SinksFile and builds its sinks.
func LoadSinksFile(path string) ([]SinkConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f SinksFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []SinkConfig
	for _, s := range f.Sinks {
		sc, err := s.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, sc)
	}
	return out, nil
}
