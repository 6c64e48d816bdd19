package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// pprofAddr turns --pprof's value into a listen address: a bare port
// (":6060" or "6060") listens on loopback only, so the profiler is never
// exposed by accident; a full "host:port" is taken as given.
func pprofAddr(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, ":") {
		return net.JoinHostPort("127.0.0.1", v)
	}
	if strings.HasPrefix(v, ":") {
		return "127.0.0.1" + v
	}
	return v
}

// startPprof serves Go's profiler (/debug/pprof/) on its own listener, apart
// from the API: it needs no token, so it must not share the API's address.
// It returns a func that stops it.
func (m *Main) startPprof(addr string) (func() error, error) {
	ln, err := net.Listen("tcp", pprofAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", pprofAddr(addr), err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	m.log.Info("profiler listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}, nil
}
