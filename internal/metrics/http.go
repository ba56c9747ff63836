package metrics

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// HandlerOption adds an endpoint to Handler.
type HandlerOption func(*http.ServeMux)

// WithHealth serves h at /healthz next to /metrics (e.g. ftpfront.HealthHandler).
func WithHealth(h http.Handler) HandlerOption {
	return func(m *http.ServeMux) { m.Handle("/healthz", h) }
}

// Handler serves the registry at /metrics (GET and HEAD; other methods get 405) and the endpoints of opts;
// other paths get 404. To add /metrics to an existing mux, use mux.Handle("/metrics", r.Handler()).
func (r *Registry) Handler(opts ...HandlerOption) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var b bytes.Buffer
		r.WriteTo(&b)
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		w.Write(b.Bytes())
	})
	for _, o := range opts {
		o(mux)
	}
	return mux
}

// Server is a running metrics (and health) HTTP server.
type Server struct {
	// Addr is the bound address (useful with port 0).
	Addr net.Addr
	srv  *http.Server
}

// Close closes the listener and open connections.
func (s *Server) Close() error { return s.srv.Close() }

// Serve listens on addr now, so a taken or bad address is the caller's error at start-up, and serves h in the
// background until Close. log receives the start line and a line if serving ends with an error; nil means
// slog.Default().
func Serve(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", s.Addr.String(), "err", err)
		}
	}()
	log.Info("metrics listening", "addr", s.Addr.String())
	return s, nil
}
