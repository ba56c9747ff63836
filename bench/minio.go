package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"

	"github.com/s3ftp/s3ftp/internal/miniolocal"
)

// minioServer is the MinIO the run measures against, listening on loopback, with random root credentials.
type minioServer struct {
	endpoint             string
	accessKey, secretKey string
	srv                  *miniolocal.Server
}

// startMinio runs MinIO (bin, or miniolocal.FindBinary when empty) with its data in dataDir until stop; its
// output goes to logPath.
func startMinio(ctx context.Context, bin, dataDir, logPath string) (*minioServer, error) {
	if bin == "" {
		var err error
		if bin, err = miniolocal.FindBinary(); err != nil {
			return nil, fmt.Errorf("minio binary not found (scripts/bench.sh builds it, or pass --minio): %w", err)
		}
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	rand.Read(k)
	srv, err := miniolocal.Launch(ctx, miniolocal.Options{Binary: bin, DataDir: dataDir, Output: logf,
		AccessKey: "bench" + hex.EncodeToString(k[:4]), SecretKey: hex.EncodeToString(k)})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting MinIO: %w", err)
	}
	return &minioServer{endpoint: srv.Endpoint, accessKey: srv.AccessKey, secretKey: srv.SecretKey, srv: srv}, nil
}

// createBucket creates a bucket (an existing one of ours is not an error).
func (m *minioServer) createBucket(ctx context.Context, name string) error {
	return m.srv.CreateBucket(ctx, name)
}

// stop terminates MinIO and waits for it.
func (m *minioServer) stop() {
	if err := m.srv.Stop(); err != nil {
		slog.Error("stopping MinIO failed", "err", err)
	}
}
