// Command demo runs the whole product on one machine in one command ("make demo", or go run ./scripts/demo from
// the repository root): it builds bin/s3mount and bin/ftpfront, starts MinIO on loopback (data in
// ./.demo/minio; the binary is found with miniolocal.FindBinary or installed with
// "go install github.com/minio/minio@latest"), creates the bucket "demo", mounts it on ./.demo/mnt with
// "bin/s3mount -f", serves the mount over FTPS with bin/ftpfront and a "demo" user whose random password it
// prints, waits until both are ready, and prints commands to paste. Ctrl-C (SIGINT or SIGTERM) stops ftpfront,
// unmounts (fusermount3 -u -z if s3mount could not), and stops MinIO; the objects stay in ./.demo/minio.
//
// # Real S3 instead of MinIO
//
// With --bucket (an existing bucket) no MinIO is started: the mount uses --endpoint (default $AWS_ENDPOINT_URL_S3,
// then $AWS_ENDPOINT_URL; empty means AWS itself), --region (default $AWS_REGION) and the credentials of the
// SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles), which the demo
// passes through its environment (S3MOUNT_* and FTPFRONT_* settings aside: the demo sets the daemons' flags):
//
//	AWS_PROFILE=dev go run ./scripts/demo --bucket my-bucket --region eu-west-1
//	go run ./scripts/demo --bucket test --endpoint https://s3.example.net
//
// In MinIO mode, AWS_* variables are removed from the environment of the demo and its children, so an ambient
// profile or CA bundle cannot redirect the local demo.
//
// # Self-check
//
// --check runs the walk-through itself instead of waiting for Ctrl-C: it uploads a file with curl over FTPS,
// reads it back through the mount and from the bucket with the S3 API, downloads it again with curl, then tears
// everything down and verifies that nothing is left mounted. The exit code is 0 only if every step succeeded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// options are the demo's settings.
type options struct {
	dir          string // working directory for data, mount point, users file and logs
	bin          string // where the daemons are built
	bucket       string // external bucket; empty means local MinIO with bucket "demo"
	endpoint     string
	region       string
	listen       string
	healthAddr   string
	passivePorts string
	check        bool
	skipBuild    bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d := &demo{o: o, out: stdout, errw: stderr}
	err = d.run(ctx)
	if terr := d.teardown(); err == nil {
		err = terr
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", ".demo", "directory for MinIO data, the mount point, the users file and logs")
	fs.StringVar(&o.bin, "bin", "bin", "directory the daemons are built into and run from")
	fs.StringVar(&o.bucket, "bucket", "", "use this existing bucket on real S3 instead of a local MinIO")
	fs.StringVar(&o.endpoint, "endpoint", firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), "S3 endpoint with --bucket (empty: AWS)")
	fs.StringVar(&o.region, "region", os.Getenv("AWS_REGION"), "S3 region with --bucket")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:2121", "ftpfront explicit FTPS address")
	fs.StringVar(&o.healthAddr, "health-addr", "127.0.0.1:8080", "ftpfront health check address")
	fs.StringVar(&o.passivePorts, "passive-ports", "40000-40009", "ftpfront passive port range")
	fs.BoolVar(&o.check, "check", false, "upload, verify and tear down instead of waiting for Ctrl-C")
	fs.BoolVar(&o.skipBuild, "skip-build", false, "use bin/s3mount and bin/ftpfront as they are")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.bucket == "" && (o.endpoint != "" && isFlagSet(fs, "endpoint") || isFlagSet(fs, "region")) {
		return o, errors.New("--endpoint and --region need --bucket (without it the demo runs its own MinIO)")
	}
	return o, nil
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// cleanAWSEnv removes every AWS_* variable from this process, so the local demo cannot be redirected.
func cleanAWSEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
}
