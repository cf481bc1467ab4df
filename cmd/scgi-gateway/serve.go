package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/scgi"
	"github.com/qxbridge/qxbridge/store"
)

// gateway is a configured gateway: the session directory, the routing table, and the
// listeners it serves on.
type gateway struct {
	cfg     *config
	log     *slog.Logger
	dir     *store.Directory
	manager *quixote.Manager
	metrics *gatewayMetrics
	routes  []*route
	handler http.Handler // the router: what the HTTP and SCGI listeners serve

	listeners []boundListener
}

// boundListener is an open listener and what it serves.
type boundListener struct {
	kind string // "http", "scgi" or "metrics"
	l    net.Listener
}

// Addr returns the address of the first listener of the kind, as the flags spell it,
// or "".
func (g *gateway) Addr(kind string) string {
	for _, b := range g.listeners {
		if b.kind == kind {
			return listenerAddr(b.l)
		}
	}
	return ""
}

// newGateway opens the session directory (creating it if missing) and builds the
// routes. It opens no listener yet.
func newGateway(cfg *config, log *slog.Logger) (*gateway, error) {
	if err := os.MkdirAll(cfg.SessionsDir, 0o777); err != nil {
		return nil, fmt.Errorf("session directory: %w", err)
	}
	m := newGatewayMetrics()
	opts := []store.Option{store.WithLockWaitHook(m.lockWaited)}
	if cfg.StagingDir != "" {
		opts = append(opts, store.WithStagingDir(cfg.StagingDir))
	}
	dir, err := store.Open(cfg.SessionsDir, opts...)
	if err != nil {
		return nil, fmt.Errorf("session directory: %w", err)
	}
	g := &gateway{cfg: cfg, log: log, dir: dir, metrics: m}
	g.manager = &quixote.Manager{
		Store:      meteredStore{dir, g.metrics},
		Cookie:     cfg.Cookie,
		NewClass:   cfg.NewClass,
		ScriptName: scriptNameFrom,
		OneAtATime: true,
		Logger:     log,
	}
	var demo http.Handler
	for _, spec := range cfg.Routes {
		r := &route{spec: spec}
		if spec.Demo {
			if demo == nil {
				demo = g.manager.Handler(newDemo(dir, log))
			}
			r.handler, r.backend = mountGo(spec, demo), "demo"
		} else {
			p, err := scgi.NewProxy(spec.Backends...)
			if err != nil {
				return nil, fmt.Errorf("%v: %w", spec, err)
			}
			if spec.Mount {
				p.ScriptName = spec.match()
			}
			p.MaxConnsPerBackend = cfg.BackendMaxConns
			p.ResponseHeaderTimeout = cfg.BackendTimeout
			p.ErrorLog = log
			p.ErrorHandler = g.proxyErrorHandler(spec.Prefix)
			g.metrics.addProxy(spec.Prefix, p)
			r.proxy, r.backend = p, spec.Target
			r.handler = shield(p, cfg.Cookie.Name, spec.Prefix, log, g.metrics)
		}
		g.routes = append(g.routes, r)
	}
	g.handler = newRouter(g.routes, log, g.metrics)
	return g, nil
}

// proxyErrorHandler answers a proxied request that failed before the backend sent
// anything, as scgi.Proxy's default does, and counts it.
func (g *gateway) proxyErrorHandler(route string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		code := scgi.StatusForError(err)
		if errors.Is(err, context.Canceled) {
			return // the client went away; nobody reads an answer
		}
		g.metrics.backendErrors.With(route, fmt.Sprint(code)).Inc()
		g.log.Warn("backend request failed", "route", route, "method", r.Method, "path", r.URL.Path,
			"status", code, "error", err)
		http.Error(w, http.StatusText(code), code)
	}
}

// listen opens the listeners: the inherited systemd sockets first (named "http" and
// "metrics" serve those; any other name, or none, serves SCGI, as python-scgi takes
// its inherited socket), then the flags' addresses.
func (g *gateway) listen(inh []inherited) error {
	for _, in := range inh {
		kind := "scgi"
		if in.name == "http" || in.name == "metrics" {
			kind = in.name
		}
		g.listeners = append(g.listeners, boundListener{kind, in.l})
	}
	for _, a := range []struct{ kind, addr string }{
		{"http", g.cfg.HTTPAddr}, {"scgi", g.cfg.SCGIAddr}, {"metrics", g.cfg.MetricsAddr},
	} {
		if a.addr == "" {
			continue
		}
		l, err := listen(a.addr, g.cfg.SocketMode)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("-%s %s: %w", a.kind, a.addr, err)
		}
		g.listeners = append(g.listeners, boundListener{a.kind, l})
	}
	if !g.serves("http") && !g.serves("scgi") {
		g.closeListeners()
		return errors.New("no HTTP or SCGI listener: give -http or -scgi")
	}
	return nil
}

func (g *gateway) serves(kind string) bool { return g.Addr(kind) != "" }

func (g *gateway) closeListeners() {
	for _, b := range g.listeners {
		b.l.Close()
	}
	g.listeners = nil
}

// server is what http.Server and scgi.Server have in common.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// health answers /healthz: healthy while the session directory is usable. Backend
// state is listed but does not make the gateway unhealthy: the gateway still serves
// its Go routes and answers 502/503 for the others, and a load balancer taking it out
// would not bring the Python workers back.
func (g *gateway) health() (bool, string) {
	var b strings.Builder
	ok := true
	if fi, err := os.Stat(g.dir.Dir()); err != nil || !fi.IsDir() {
		ok = false
		fmt.Fprintf(&b, "sessions %s: unavailable: %v\n", g.dir.Dir(), err)
	} else {
		fmt.Fprintf(&b, "sessions %s: ok\n", g.dir.Dir())
	}
	for _, r := range g.routes {
		if r.proxy == nil {
			continue
		}
		for _, s := range r.proxy.Stats() {
			state := "up"
			if !s.Healthy {
				state = "resting until " + s.RestedUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "route %s backend %s: %s\n", r.spec.Prefix, s.Addr, state)
		}
	}
	if ok {
		return true, "ok\n" + b.String()
	}
	return false, "unhealthy\n" + b.String()
}

// serve serves on the listeners until ctx is done, then shuts down gracefully: the
// listeners close at once (new connections are refused), requests in flight get up
// to ShutdownTimeout to finish, and any still running after that are cut off. It
// returns an error only if a listener failed while serving.
func (g *gateway) serve(ctx context.Context) error {
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelDebug)
	var servers []server
	errc := make(chan error, len(g.listeners))
	for _, b := range g.listeners {
		var s server
		switch b.kind {
		case "http":
			s = &http.Server{Handler: g.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errorLog}
		case "scgi":
			s = &scgi.Server{Handler: g.handler, ErrorLog: g.log}
		case "metrics":
			s = &http.Server{Handler: g.metrics.handler(g.health), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errorLog}
		}
		servers = append(servers, s)
		go func(b boundListener) {
			err := s.Serve(b.l)
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, scgi.ErrServerClosed) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s listener %s: %w", b.kind, listenerAddr(b.l), err)
			}
			errc <- err
		}(b)
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		g.sweepLoop(sweepCtx)
	}()

	var failure error
	select {
	case <-ctx.Done():
		g.log.Info("shutting down: no new connections; waiting for requests in flight", "timeout", g.cfg.ShutdownTimeout)
	case failure = <-errc:
		g.log.Error("a listener failed; shutting down", "error", failure)
	}
	stopSweep()

	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var cut sync.Once
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				cut.Do(func() {
					g.log.Warn("requests still running after the shutdown timeout are cut off", "timeout", g.cfg.ShutdownTimeout)
				})
				s.Close()
			}
		}()
	}
	wg.Wait()
	<-sweepDone
	g.log.Info("stopped")
	return failure
}
