package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/scgi"
)

// Gateway serves the Go routes of a Quixote site with its sessions and forwards the
// other routes to its Python workers. Register Go handlers with Handle, set Config
// (New fills in the defaults), then either hand over to Main, or Open it and serve
// listeners with Serve, ServeSCGI and ServeMetrics until Shutdown. A Gateway is also
// an http.Handler: ServeHTTP routes a request as its listeners do.
type Gateway struct {
	// Config is what the gateway serves. Set it before Open; afterwards, Reload
	// changes the routes.
	Config Config
	// Logger receives the request log (one record per request) and every event an
	// operator should know about. nil means slog.Default(); Main makes one from
	// Config.LogFormat and Config.LogLevel unless it is set, which writes the
	// request records in batches, at most 10 ms after the request (every other
	// record at once, in order, and what is left when Main stops).
	Logger *slog.Logger
	// Name is the program's name in usage and error messages of Main; New sets it
	// to the base name of os.Args[0].
	Name string
	// Registry holds the metrics served at /metrics (ServeMetrics, -metrics): the
	// gateway's own (qxbridge_*), the Go runtime's (go_*), the process's
	// (process_*) and qxbridge_build_info. A program registers its own collectors
	// on it, before or after Open, and they are served on the same endpoint. New
	// makes it; nil means Open makes one.
	Registry *prometheus.Registry
	// Store holds the sessions, when the program brings its own store: any
	// quixote.IterableStore (the gateway then ignores Config.SessionsDir and
	// Config.StagingDir, and leaves closing it to the program). nil means Open opens
	// the store Config.SessionsDir names: a session directory, or a PostgreSQL
	// database by its postgres:// URL.
	Store quixote.IterableStore
	// TryRoutes are the routes Main and Run serve when they are given nothing to
	// route and no deployment: no route in Config, no -route, -mount or -config flag,
	// no -sessions or -scgi flag, no SCGI socket passed by systemd and no Store. It
	// is for a program's try-out mode (the stock scgi-gateway serves its demo this
	// way): a command line that names sessions or a front server but no route is
	// refused ("no routes") rather than served by them.
	TryRoutes []Route
	// ModifyProxy, when not nil, is called with each Python pool's scgi.Proxy the
	// gateway makes (at Open, and at Reload for a pool whose settings changed),
	// after the gateway has set the fields its configuration names. A program
	// sets there what the configuration does not: DrainTimeout and DrainBytes,
	// WarmMaxAge, DialTimeout, QueueTimeout, MaxFails and FailTimeout, the body
	// spooling and rate limits. The gateway's ErrorHandler (which counts
	// failures) and Affinity (which keeps a session on one worker) are best left
	// as they are. An error refuses the configuration, as a bad file would.
	ModifyProxy func(route Route, p *scgi.Proxy) error

	openMu     sync.Mutex // held through Open: one Open makes the gateway's state
	mu         sync.Mutex
	handlers   map[string]http.Handler
	opened     bool
	sessions   quixote.IterableStore // the store Open opened, or Store
	closeStore func()                // releases a store Open opened
	manager    *quixote.Manager
	metrics    *gatewayMetrics
	cutover    *cutoverState
	orderer    *orderer       // per-session ordering; nil when disabled
	cookie     quixote.Cookie // the session cookie, as opened
	table      atomic.Pointer[table]
	servers    map[server]struct{}
	shutdown   bool

	stopSweep context.CancelFunc
	sweepDone chan struct{}

	// Set by Run: the listeners it opened, and a hook tests use to learn them.
	listeners []boundListener
	onReady   func(*Gateway)
	process   bool // run by Main: the process is ours
}

// New returns a gateway with the default configuration: HTTP on DefaultHTTPAddr
// (added by Main when no listener is given), sessions in DefaultSessionsDir, the
// cookie QX_session, new sessions of session3's Session class, no routes.
func New() *Gateway {
	return &Gateway{Config: defaultConfig(), Name: filepath.Base(os.Args[0]), Registry: newRegistry()}
}

// Handle registers a Go handler under name, which routes name as their target
// (Route.Target, -route /reports/=reports, target = "reports" in the configuration
// file). The gateway serves it wrapped in the session manager: quixote.SessionFrom(r)
// gives it the request's session, loaded from and saved to the shared session
// directory. A name is letters, digits, '_', '.' and '-'. Handle panics on an invalid
// or already registered name, as http.ServeMux does on a conflicting pattern.
func (g *Gateway) Handle(name string, h http.Handler) {
	if !handlerName.MatchString(name) {
		panic(fmt.Sprintf("gateway: handler name %q: want letters, digits, '_', '.' and '-'", name))
	}
	if h == nil {
		panic("gateway: nil handler for " + name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := g.handlers[name]; dup {
		panic("gateway: handler " + name + " registered twice")
	}
	if g.handlers == nil {
		g.handlers = map[string]http.Handler{}
	}
	g.handlers[name] = h
}

// HandleFunc registers a handler function under name, as Handle does.
func (g *Gateway) HandleFunc(name string, f func(http.ResponseWriter, *http.Request)) {
	g.Handle(name, http.HandlerFunc(f))
}

func (g *Gateway) handlerNames() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handlerNamesLocked()
}

func (g *Gateway) log() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

// Sessions returns the session store, once Open has opened it (nil before): Store,
// or what Config.SessionsDir names, a *store.Directory or a *pgstore.Store. Requests
// of Go routes reach it through the session manager; a handler that needs it itself
// (to sweep, to list) calls Sessions.
func (g *Gateway) Sessions() quixote.IterableStore {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions
}

// Open checks the configuration, opens the session store (Store, else the session
// directory, created if missing, or the PostgreSQL database, its table created if
// missing, that Config.SessionsDir names), builds the routing table and starts the
// idle sweep (Config.MaxIdle). The Serve methods call it when it was not called;
// calling it again does nothing.
func (g *Gateway) Open() error {
	g.openMu.Lock()
	defer g.openMu.Unlock()
	g.mu.Lock()
	opened := g.opened
	g.mu.Unlock()
	if opened {
		return nil
	}
	cfg := g.Config.clone()
	if err := cfg.validate(); err != nil {
		return err
	}
	newClass, err := resolveClass(cfg.NewClass, cfg.Classes)
	if err != nil {
		return err
	}
	g.mu.Lock()
	if g.Registry == nil {
		g.Registry = newRegistry()
	}
	if g.metrics == nil {
		// Registered once, so that an Open that failed can be tried again.
		g.metrics = newGatewayMetrics(g.Registry)
		g.cutover = newCutoverState(g.Registry)
	}
	m := g.metrics
	st := g.Store
	g.mu.Unlock()
	closeStore := func() {}
	if st == nil {
		st, closeStore, err = openStore(context.Background(), cfg.SessionsDir, storeOptions{
			staging: cfg.StagingDir, lockWait: m.lockWaited, classes: append([]quixote.Class{newClass}, cfg.Classes...), create: true,
			fileMode: cfg.FileMode, userName: cfg.UserName, inPlace: cfg.InPlace})
		if err != nil {
			return err
		}
		if err := checkStore(st, g.log()); err != nil {
			closeStore()
			return err
		}
		if d, ok := st.(interface{ InPlace() bool }); ok && cfg.InPlace && !d.InPlace() {
			g.log().Warn("sessions are saved by replacing their files, not in place: the session directory's filesystem or the other store options do not allow it (see store.WithInPlace)",
				"dir", cfg.SessionsDir)
		}
	}
	manager := &quixote.Manager{
		Store:      meteredStore{st, m},
		Cookie:     cfg.Cookie,
		NewClass:   newClass,
		Classes:    cfg.Classes,
		ScriptName: ScriptName,
		// With per-session ordering the gateway already serves the requests of a
		// session one at a time, Go and Python together, before the manager sees
		// them; the manager's own in-process lock would only be taken uncontended
		// (and would order the routes exempted with Route.Unordered after all).
		// Without it, the manager still orders the Go requests of this process.
		OneAtATime:  cfg.Ordering.Disabled,
		Logger:      g.log(),
		Failed:      m.sessionFailed,
		IdleTimeout: cfg.IdleTimeout,
		MaxLifetime: cfg.MaxLifetime,
	}

	if l, ok := st.(SessionLocker); ok && cfg.Ordering.Locker == nil {
		// A store that locks sessions itself orders every gateway that shares it:
		// store/pgstore's advisory locks span the hosts of one database.
		cfg.Ordering.Locker = l
	}
	o, err := openOrderer(cfg, m)
	if err != nil {
		closeStore()
		return err
	}
	if d, ok := o.ownLockDir(cfg.Ordering); ok {
		closeSessions := closeStore
		closeStore = func() { closeSessions(); d.Close() } // the lock files it keeps open
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.sessions, g.manager, g.metrics = st, manager, m
	g.orderer, g.cookie = o, cfg.Cookie
	m.proxies = g.proxies
	t, err := g.buildTable(cfg, nil)
	if err != nil {
		g.sessions = nil
		closeStore()
		return err
	}
	g.closeStore = closeStore
	g.table.Store(t)
	g.cutover.inUse(t)
	g.opened = true
	sweepCtx, stop := context.WithCancel(context.Background())
	g.stopSweep, g.sweepDone = stop, make(chan struct{})
	go func() {
		defer close(g.sweepDone)
		g.sweepLoop(sweepCtx, st, cfg.MaxIdle)
	}()
	return nil
}

// resolveClass returns the class of new sessions: c, or the description of the same
// class in classes (its kind, has_info, MAX_FORM_TOKENS), which wins.
func resolveClass(c quixote.Class, classes []quixote.Class) (quixote.Class, error) {
	if c.Module == "" && c.Name == "" {
		c = quixote.Session3Class
	}
	for _, d := range classes {
		if d.Module == "" || d.Name == "" {
			return c, fmt.Errorf("session class %+v: module and name are required", d)
		}
		if d.Module == c.Module && d.Name == c.Name {
			c = d
		}
	}
	return c, nil
}

// table is a routing table: the routes, longest prefix first.
type table struct {
	routes []*route
}

// route is one entry of the routing table: its configuration and what serves it.
type route struct {
	Route
	handler http.Handler // the whole chain of the route
	proxy   *scgi.Proxy  // the pool of a Python target; nil for a Go handler
	backend string       // what the request log calls the target
	key     string       // what makes a pool reusable by the next table
}

// buildTable makes the routing table for cfg. Pools whose route, target and limits
// are unchanged from the old table are kept, with their backends' state (health,
// connections in flight).
func (g *Gateway) buildTable(cfg Config, old *table) (*table, error) {
	reuse := map[string]*scgi.Proxy{}
	if old != nil {
		for _, r := range old.routes {
			if r.proxy != nil {
				reuse[r.key] = r.proxy
			}
		}
	}
	var routes []*route
	for _, spec := range cfg.Routes {
		r := &route{Route: spec, backend: spec.Target}
		pool, isPool, err := cfg.pool(spec.Target)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", spec, err)
		}
		if _, clash := g.handlers[spec.Target]; clash && isPool {
			return nil, fmt.Errorf("%v: %q names both a pool and a Go handler", spec, spec.Target)
		}
		var inner http.Handler
		if !isPool {
			h, ok := g.handlers[spec.Target]
			if !ok {
				return nil, g.noHandler(spec, g.handlerNamesLocked())
			}
			inner = mountGo(spec, g.manager.Handler(h))
		} else {
			r.key = strings.Join([]string{spec.Prefix, spec.Target, strconv.FormatBool(spec.Mount),
				strings.Join(pool.Addresses, ","), strconv.Itoa(pool.MaxConns), pool.Timeout.String(), strconv.Itoa(pool.WarmConns),
				pool.drainTimeout.String(), strconv.FormatInt(pool.drainBytes, 10)}, "\x00")
			p := reuse[r.key]
			if p == nil {
				if p, err = g.newProxy(spec, pool); err != nil {
					return nil, err
				}
			}
			r.proxy = p
			shield := &quixote.Shield{Cookie: cfg.Cookie.Name, Logger: g.log().With("route", spec.Prefix),
				Removed: func(_ *http.Request, n int) { g.metrics.rejected.WithLabelValues(spec.Prefix).Add(float64(n)) }}
			inner = shield.Handler(g.expireHandler(cfg, p))
		}
		if spec.Candidate != "" {
			if inner, err = g.withCandidate(cfg, spec, isPool, inner); err != nil {
				return nil, err
			}
		}
		r.handler = g.routeHandler(r, inner)
		routes = append(routes, r)
	}
	return newTable(routes), nil
}

// closeProxies closes the pools of old that kept is not using (kept may be nil):
// their connections dialled ahead. Requests in flight on them finish.
func closeProxies(old, kept *table) {
	if old == nil {
		return
	}
	for _, r := range old.routes {
		if r.proxy != nil && (kept == nil || !slices.ContainsFunc(kept.routes, func(k *route) bool { return k.proxy == r.proxy })) {
			r.proxy.Close()
		}
	}
}

// newTable returns the routing table of routes: longest prefix first, which is the
// order lookup tries them in.
func newTable(routes []*route) *table {
	t := &table{routes: slices.Clone(routes)}
	slices.SortStableFunc(t.routes, func(a, b *route) int { return len(b.match()) - len(a.match()) })
	return t
}

// checkTargets checks that every route's target is a pool or a registered Go
// handler, and that no name is both.
func (g *Gateway) checkTargets(cfg *Config) error {
	names := g.handlerNames()
	for _, r := range cfg.Routes {
		_, isPool, err := cfg.pool(r.Target)
		switch {
		case err != nil:
			return fmt.Errorf("%v: %w", r, err)
		case isPool && slices.Contains(names, r.Target):
			return fmt.Errorf("%v: %q names both a pool and a Go handler", r, r.Target)
		case !isPool && !slices.Contains(names, r.Target):
			return g.noHandler(r, names)
		case r.Candidate != "" && !slices.Contains(names, r.Candidate):
			return g.noHandler(Route{Prefix: r.Prefix, Target: r.Candidate}, names)
		}
	}
	return nil
}

func (g *Gateway) noHandler(r Route, names []string) error {
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	return fmt.Errorf("%v: no Go handler is registered as %q (registered: %s)", r, r.Target, list)
}

func (g *Gateway) handlerNamesLocked() []string {
	names := make([]string, 0, len(g.handlers))
	for n := range g.handlers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Reload applies a new configuration's routes and pools (with the backend limits) to
// an open gateway: requests that arrive from then on are routed by it, requests in
// flight finish on the routes they started on, and no listener closes. A pool whose
// route, addresses and limits did not change is kept with its backends' state. The
// other settings (listeners, session directory, cookie, session classes, idle sweep,
// shutdown timeout, logs) take effect at a restart; Reload logs which of them differ.
// An invalid configuration is refused with its error, and the running one stays.
func (g *Gateway) Reload(cfg Config) error {
	cfg = cfg.clone()
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := g.checkTargets(&cfg); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		return errors.New("gateway: Reload before Open")
	}
	t, err := g.buildTable(cfg, g.table.Load())
	if err != nil {
		return err
	}
	if changed := restartOnly(g.Config, cfg); len(changed) > 0 {
		g.log().Warn("reload: these settings take effect at the next restart", "changed", strings.Join(changed, ", "))
	}
	closeProxies(g.table.Swap(t), t) // the connections dialled ahead of pools not kept
	g.cutover.inUse(t)
	g.Config.Routes, g.Config.Pools = cfg.Routes, cfg.Pools
	g.Config.BackendMaxConns, g.Config.BackendTimeout = cfg.BackendMaxConns, cfg.BackendTimeout
	g.Config.BackendWarmConns = cfg.BackendWarmConns
	g.Config.BackendDrainTimeout, g.Config.BackendDrainBytes = cfg.BackendDrainTimeout, cfg.BackendDrainBytes
	g.Config.Cutover = cfg.Cutover
	return nil
}

// restartOnly names the settings that differ between a and b and that a running
// gateway does not change.
func restartOnly(a, b Config) []string {
	var out []string
	add := func(differ bool, name string) {
		if differ {
			out = append(out, name)
		}
	}
	add(a.HTTPAddr != b.HTTPAddr || a.SCGIAddr != b.SCGIAddr || a.MetricsAddr != b.MetricsAddr || a.SocketMode != b.SocketMode ||
		a.SCGIHalfClose != b.SCGIHalfClose, "listeners")
	add(a.SessionsDir != b.SessionsDir || a.StagingDir != b.StagingDir || a.InPlace != b.InPlace || a.MaxIdle != b.MaxIdle ||
		a.IdleTimeout != b.IdleTimeout || a.MaxLifetime != b.MaxLifetime || a.FileMode != b.FileMode, "sessions")
	add(!a.Ordering.same(b.Ordering), "ordering")
	add(a.Cookie != b.Cookie, "cookie")
	sameClass := func(x, y quixote.Class) bool {
		return x.String() == y.String() && x.Kind == y.Kind && x.MaxFormTokens == y.MaxFormTokens
	}
	add(!sameClass(a.NewClass, b.NewClass) || !slices.EqualFunc(a.Classes, b.Classes, sameClass), "session classes")
	add(a.ShutdownTimeout != b.ShutdownTimeout, "shutdown timeout")
	add(a.LogFormat != b.LogFormat || a.LogLevel != b.LogLevel, "log")
	return out
}

// routeHandler wraps the handler of one route, Go or Python, in what applies to
// every route whatever serves it. inner is the route's own handler: the mount and
// session manager around a Go handler, or the cookie shield in front of a pool. The
// router has already logged and counted the request, and cleaned its path, around
// all of it. Layers that belong to every route (per-session ordering, and per-route
// options such as rollout or shadowing, read from the route's Route) go here; the
// session a request belongs to on either side is Config.Cookie.SessionID(r).
func (g *Gateway) routeHandler(r *route, inner http.Handler) http.Handler {
	return g.orderHandler(r, inner)
}

// pool returns the pool a route target names, with the configuration's limits where
// the pool has none, and whether the target is a pool at all (else it names a Go
// handler).
func (c *Config) pool(target string) (Pool, bool, error) {
	p, named := c.Pools[target]
	if !named {
		backends, err := parseTarget(target)
		if err != nil || backends == nil {
			return p, false, err
		}
		p.Addresses = backends
	}
	if p.MaxConns <= 0 {
		p.MaxConns = c.BackendMaxConns
	}
	if p.Timeout <= 0 {
		p.Timeout = c.BackendTimeout
	}
	if p.WarmConns <= 0 {
		p.WarmConns = c.BackendWarmConns
	}
	p.drainTimeout, p.drainBytes = c.BackendDrainTimeout, c.BackendDrainBytes
	return p, true, nil
}

// newProxy makes the pool of a Python route.
func (g *Gateway) newProxy(spec Route, pool Pool) (*scgi.Proxy, error) {
	p, err := scgi.NewProxy(pool.Addresses...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", spec, err)
	}
	if spec.Mount {
		p.ScriptName = spec.match()
	}
	p.MaxConnsPerBackend = pool.MaxConns
	p.ResponseHeaderTimeout = pool.Timeout
	p.WarmConns = pool.WarmConns
	p.DrainTimeout, p.DrainBytes = pool.drainTimeout, pool.drainBytes
	p.ErrorLog = g.log()
	p.ErrorHandler = g.proxyErrorHandler(spec.Prefix)
	cookie := g.cookie
	p.Affinity = cookie.SessionID // a session's requests to one worker while it is up
	if g.ModifyProxy != nil {
		if err := g.ModifyProxy(spec, p); err != nil {
			return nil, fmt.Errorf("%v: %w", spec, err)
		}
	}
	return p, nil
}

// proxies returns the pools of the current routing table, for the metrics.
func (g *Gateway) proxies() []namedProxy {
	t := g.table.Load()
	if t == nil {
		return nil
	}
	var out []namedProxy
	for _, r := range t.routes {
		if r.proxy != nil {
			out = append(out, namedProxy{r.Prefix, r.proxy})
		}
	}
	return out
}

// proxyErrorHandler answers a proxied request that failed before the backend sent
// anything, as scgi.Proxy's default does, and counts it.
func (g *Gateway) proxyErrorHandler(route string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		code := scgi.StatusForError(err)
		if errors.Is(err, context.Canceled) {
			return // the client went away; nobody reads an answer
		}
		g.metrics.backendErrors.WithLabelValues(route, fmt.Sprint(code)).Inc()
		g.log().Warn("backend request failed", "route", route, "method", r.Method, "path", r.URL.Path,
			"status", code, "error", err)
		http.Error(w, http.StatusText(code), code)
	}
}

// healthTimeout bounds /healthz's check of the session store: a load balancer's
// probe must get an answer, and a database slower than this is not healthy.
const healthTimeout = 2 * time.Second

// server is what http.Server and scgi.Server have in common.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Serve serves plain HTTP on l until Shutdown or Close, and returns
// http.ErrServerClosed then, as http.Server.Serve does.
func (g *Gateway) Serve(l net.Listener) error {
	return g.serve(l, func() server {
		return newHTTPServer(&http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: httpErrorLog(g.log())})
	})
}

// ServeSCGI serves SCGI requests from a front server (nginx's scgi_pass, Apache's
// mod_proxy_scgi, lighttpd's mod_scgi) on l until Shutdown or Close, and returns
// http.ErrServerClosed then. A request whose front server closes the connection
// while it is served (its client went away) has its context canceled: it leaves
// the session's queue, or its backend request is abandoned (see
// Config.SCGIHalfClose).
func (g *Gateway) ServeSCGI(l net.Listener) error {
	g.mu.Lock()
	halfClose := g.Config.SCGIHalfClose
	g.mu.Unlock()
	return g.serve(l, func() server {
		return &scgi.Server{Handler: g, ErrorLog: g.log(), FrontEndHalfCloses: halfClose}
	})
}

// ServeMetrics serves the Prometheus metrics at /metrics and a health check at
// /healthz on l until Shutdown or Close, and returns http.ErrServerClosed then.
func (g *Gateway) ServeMetrics(l net.Listener) error {
	return g.serve(l, func() server {
		mux := http.NewServeMux()
		mux.Handle("/", g.metrics.handler(g.health))
		mux.HandleFunc("GET /shadow", g.serveShadowReport)
		return newHTTPServer(&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: httpErrorLog(g.log())})
	})
}

func (g *Gateway) serve(l net.Listener, mk func() server) error {
	if err := g.Open(); err != nil {
		l.Close()
		return err
	}
	g.mu.Lock()
	if g.shutdown {
		g.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s := mk()
	if g.servers == nil {
		g.servers = map[server]struct{}{}
	}
	g.servers[s] = struct{}{}
	g.mu.Unlock()
	err := s.Serve(l)
	if errors.Is(err, scgi.ErrServerClosed) {
		err = http.ErrServerClosed
	}
	return err
}

// Shutdown stops the gateway gracefully: every listener closes at once (new
// connections are refused), the idle sweep stops, and Shutdown waits for the requests
// in flight to finish or ctx to end, whichever comes first; in the latter case it
// returns ctx's error and the requests still running go on until Close. A connection
// accepted as its listener closed is answered too, on SCGI and HTTP listeners alike,
// so that a restart behind a socket that systemd holds loses no request.
func (g *Gateway) Shutdown(ctx context.Context) error {
	servers := g.stop()
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.Shutdown(ctx) }()
	}
	var first error
	for range servers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		g.releaseStore(true) // no request uses it any more
	}
	return first
}

// Close closes every listener and connection at once, cutting off the requests in
// flight, and stops the idle sweep.
func (g *Gateway) Close() error {
	var first error
	for _, s := range g.stop() {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	// Handlers cut off may still hold database connections until their calls
	// time out: the store is closed once they have given them back.
	g.releaseStore(false)
	return first
}

// releaseStore closes the store Open opened (a database's connection pools), once;
// with wait false, in the background.
func (g *Gateway) releaseStore(wait bool) {
	g.mu.Lock()
	release := g.closeStore
	g.closeStore = nil
	g.mu.Unlock()
	switch {
	case release == nil:
	case wait:
		release()
	default:
		go release()
	}
}

// stop marks the gateway as shut down, stops the sweep, and returns the servers.
func (g *Gateway) stop() []server {
	g.mu.Lock()
	g.shutdown = true
	servers := make([]server, 0, len(g.servers))
	for s := range g.servers {
		servers = append(servers, s)
	}
	stop, done := g.stopSweep, g.sweepDone
	g.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	closeProxies(g.table.Load(), nil) // no connection is dialled ahead any more
	return servers
}

// health answers /healthz: healthy while the session store is usable (the directory
// exists, the database answers within healthTimeout). Backend
// state is listed but does not make the gateway unhealthy: the gateway still serves
// its Go routes and answers 502/503 for the others, and a load balancer taking it out
// would not bring the Python workers back.
func (g *Gateway) health() (bool, string) {
	var b strings.Builder
	ok := true
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	name := describeStore(g.Sessions())
	if err := pingStore(ctx, g.Sessions()); err != nil {
		ok = false
		fmt.Fprintf(&b, "sessions %s: unavailable: %v\n", name, err)
	} else {
		fmt.Fprintf(&b, "sessions %s: ok\n", name)
	}
	if err := g.orderHealth(); err != nil {
		ok = false
		fmt.Fprintf(&b, "%v\n", err)
	}
	for _, np := range g.proxies() {
		for _, s := range np.proxy.Stats() {
			state := "up"
			if !s.Healthy {
				state = "resting until " + s.RestedUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "route %s backend %s: %s\n", np.route, s.Addr, state)
		}
	}
	if ok {
		return true, "ok\n" + b.String()
	}
	return false, "unhealthy\n" + b.String()
}
