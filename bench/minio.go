package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// minioServer is the MinIO the run measures against, listening on loopback.
type minioServer struct {
	endpoint             string
	accessKey, secretKey string
	cmd                  *exec.Cmd
	exited               chan struct{}
}

// startMinio runs MinIO with its data in dataDir until stop.
func startMinio(ctx context.Context, bin, dataDir, logPath string) (*minioServer, error) {
	if bin == "" {
		for _, p := range []string{os.Getenv("MINIO_BIN"), "/root/go/bin/minio", "minio"} {
			if p == "" {
				continue
			}
			if lp, err := exec.LookPath(p); err == nil {
				bin = lp
				break
			}
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("minio binary not found (scripts/bench.sh builds it; or pass --minio)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	rand.Read(k)
	m := &minioServer{endpoint: "http://127.0.0.1:" + strconv.Itoa(port), accessKey: "bench" + hex.EncodeToString(k[:4]),
		secretKey: hex.EncodeToString(k), exited: make(chan struct{})}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", "127.0.0.1:"+strconv.Itoa(port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(cport), dataDir)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.accessKey, "MINIO_ROOT_PASSWORD="+m.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("minio exited before it was ready: %s", tailFile(logPath))
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("minio not ready within 60s: %s", tailFile(logPath))
		}
	}
}

func (m *minioServer) createBucket(ctx context.Context, name string) error {
	c := newRawClient(m.endpoint, m.accessKey, m.secretKey)
	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

func (m *minioServer) stop() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
}
