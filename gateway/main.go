package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/qxbridge/qxbridge/ratelog"
)

const usageText = `usage: %[1]s [flags]
       %[1]s sessions [-sessions DIR|URL | -config FILE] list [-json] | show ID | set ID NAME=JSON | delete ID | delete -user NAME | sweep -older DURATION
       %[1]s sessions migrate -from DIR|URL -to DIR|URL [-keep-existing]
       %[1]s shadow [-metrics ADDR | -config FILE] report [-json] [ROUTE]

Serves the Go routes of a Quixote site and forwards the others to its Python workers
over SCGI, sharing session3's session files.%[2]s

Examples, with a Go handler registered as %[4]s:
  %[1]s -scgi unix:/run/qxbridge/gateway.sock -sessions /var/lib/myapp/sessions \
      -route /%[4]s/=%[4]s -route /=scgi://127.0.0.1:4000,127.0.0.1:4001
  %[1]s -http :8080 -mount /app/=scgi+unix:///run/myapp/scgi.sock -cookie-path /

Go handlers: %[3]s

Flags:
`

// Main is the whole command line of a gateway program: it runs Run with the process's
// arguments, standard output and error, stops gracefully on SIGTERM or SIGINT (a
// second signal ends the process at once), and exits with Run's status. The logger it
// makes becomes slog's default, so handlers that log with slog.Info and the like write
// to the same log in the same format. A program's
// main function registers its handlers and calls it:
//
//	func main() {
//		g := gateway.New()
//		g.Handle("reports", reports.Handler())
//		g.Main()
//	}
func (g *Gateway) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	g.process = true
	os.Exit(g.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Run runs the command in args (without the program name) and returns the exit
// status: 0, 1 for a failure, 2 for a usage error.
//
//	[flags]                         serve until ctx is done, then shut down gracefully
//	sessions [-sessions DIR] ...    inspect and edit the sessions (list, show, set,
//	                                delete, sweep), or copy them (migrate)
//	shadow [-metrics ADDR] report   print a running gateway's shadow comparisons
//
// Serving reads the flags (see -help) over Config as the program set it, opens the
// listeners the flags name plus the sockets systemd passed (socket activation,
// LISTEN_FDS: named "http" or "metrics" by FileDescriptorName= they serve those,
// otherwise SCGI), logs each request, and on ctx's end stops accepting connections
// and lets the requests in flight finish for up to Config.ShutdownTimeout.
func (g *Gateway) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sessions" {
		return g.runSessions(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "shadow" {
		return g.runShadow(ctx, args[1:], stdout, stderr)
	}
	code := g.Config.clone() // what SIGHUP reloads start from
	cfg, defaults, st, err := g.parseFlags(args, stderr, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nrun %s -h for the flags\n", g.name(), err, g.name())
		return 2
	}
	if st.version {
		fmt.Fprint(stdout, versionText(g.name()))
		return 0
	}
	g.Config = cfg
	if g.Logger == nil {
		// The request records are written in batches (see logBuffer); what is
		// left is written when Run returns.
		logs := newLogBuffer(stderr)
		defer logs.Close()
		g.Logger = slog.New(flushingHandler{newLogger(cfg, logs).Handler(), logs})
		if g.process {
			// The program's own handlers that log through slog's default logger
			// write in the same format, to the same place.
			slog.SetDefault(g.Logger)
		}
	}
	log := g.Logger

	inh, err := systemdListeners()
	if err != nil {
		log.Error("socket activation", "error", err)
		return 1
	}
	if err := g.Open(); err != nil {
		for _, in := range inh {
			in.l.Close()
		}
		log.Error("cannot start", "error", err)
		return 1
	}
	if err := g.listen(inh); err != nil {
		g.Close()
		log.Error("cannot listen", "error", err)
		return 1
	}
	g.logStartup(defaults)
	if g.onReady != nil {
		g.onReady(g)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloadDone := make(chan struct{})
	defer close(reloadDone)
	go func() {
		for {
			select {
			case <-reloadDone:
				return
			case <-hup:
				g.reloadFromArgs(code, args)
			}
		}
	}()
	if err := g.serveUntil(ctx); err != nil {
		return 1
	}
	return 0
}

// reloadFromArgs reads the configuration again as Run did at start-up (the
// configuration file, then the flags, over the program's configuration) and applies
// what can change while serving (see Reload). A configuration that cannot be read or
// is invalid is refused with its error, and the running configuration stays.
func (g *Gateway) reloadFromArgs(code Config, args []string) {
	log := g.log()
	cfg, _, st, err := g.parseFlagsOver(code, args, io.Discard, os.Getenv)
	if err == nil {
		err = g.Reload(cfg)
	}
	if err != nil {
		log.Error("reload refused; the running configuration stays", "error", err)
		g.metrics.reloads.WithLabelValues("refused").Inc()
		return
	}
	g.metrics.reloads.WithLabelValues("ok").Inc()
	log.Info("reloaded", "config", st.configFile, "routes", len(cfg.Routes))
}

func (g *Gateway) name() string {
	if g.Name == "" {
		return "gateway"
	}
	return g.Name
}

// newLogger returns the gateway's logger: warnings about hostile input (bad
// cookies, bad SCGI requests) are rate-limited per kind and every value is
// truncated (ratelog), so an attack cannot flood the log.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		opts.ReplaceAttr = secondsAttr
		return slog.New(ratelog.New(slog.NewJSONHandler(w, opts), ratelog.Options{}))
	}
	return slog.New(ratelog.New(slog.NewTextHandler(w, opts), ratelog.Options{}))
}

// secondsAttr writes a duration in the JSON log as a number of seconds, named with
// an "_s" suffix ("duration_s": 0.000354), as log pipelines expect; slog's JSON
// handler would write an integer of nanoseconds. The text log keeps Go's form
// ("duration=354.5µs").
func secondsAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_s", a.Value.Duration().Seconds())
	}
	return a
}

// defaultsUsed records which defaults Run applied, for the start-up log.
type defaultsUsed struct {
	routes   bool // no route was given: the program's own routes serve
	listener bool // no listener was given: DefaultHTTPAddr
}

// funcValue is a flag whose value is read and written through functions, so that a
// flag writes straight into a Config field of a type flag does not know.
type funcValue struct {
	get func() string
	set func(string) error
}

func (v funcValue) String() string {
	if v.get == nil {
		return ""
	}
	return v.get()
}

func (v funcValue) Set(s string) error { return v.set(s) }

// notValue is a boolean flag that writes its negation: -order=false sets
// Ordering.Disabled.
type notValue struct{ p *bool }

func (v notValue) String() string {
	if v.p == nil {
		return "true"
	}
	return fmt.Sprint(!*v.p)
}

func (v notValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = !b
	return nil
}

func (v notValue) IsBoolFlag() bool { return true }

// flagState is what the flags hold besides Config fields.
type flagState struct {
	routes               []Route
	routeOpts            []routeOpt // -candidate, -rollout, -shadow, -fallback
	className, classKind string
	configFile           string
	version              bool
}

// flagSet returns the serve command's flags, writing into cfg and st; their defaults
// are cfg's values.
func (g *Gateway) flagSet(cfg *Config, st *flagState, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(g.name(), flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		extra := ""
		switch {
		case len(cfg.Routes) > 0:
			extra = "\n\nWithout -route, -mount or routes in the configuration file it serves " + describeRoutes(cfg.Routes) + "."
		case len(g.TryRoutes) > 0:
			extra = "\n\nTo try it out, with none of -" + strings.Join(tryOutFlags, ", -") + " it serves " +
				describeRoutes(g.TryRoutes) + ";\notherwise it serves the routes given."
		}
		registered := g.handlerNames()
		names, example := strings.Join(registered, ", "), "reports"
		if len(registered) == 0 {
			names = "none registered"
		}
		// The example deploys one of the program's own handlers, not a try-out one.
		for _, n := range registered {
			if !slices.ContainsFunc(g.TryRoutes, func(r Route) bool { return r.Target == n }) {
				example = n
				break
			}
		}
		fmt.Fprintf(fs.Output(), usageText, g.name(), extra, names, example)
		fs.PrintDefaults()
	}
	routeFlag := func(mount bool) funcValue {
		return funcValue{set: func(v string) error {
			r, err := parseRoute(v, mount)
			if err != nil {
				return err
			}
			st.routes = append(st.routes, r)
			return nil
		}}
	}
	fs.StringVar(&st.configFile, "config", "", "read the configuration from the TOML `FILE` (flags override it; SIGHUP reloads its routes and pools)")
	fs.BoolVar(&st.version, "version", false, "print the version and build information, and exit")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "serve plain HTTP on `ADDR` (host:port or unix:/path; default "+DefaultHTTPAddr+" when no other listener is given)")
	fs.StringVar(&cfg.SCGIAddr, "scgi", cfg.SCGIAddr, "serve SCGI for a front server on `ADDR` (host:port or unix:/path)")
	fs.BoolVar(&cfg.SCGIHalfClose, "scgi-half-close", cfg.SCGIHalfClose, "the front server may half-close SCGI connections (lighttpd's tcp-fin-propagate): do not take the end of a request's input for the client leaving")
	fs.StringVar(&cfg.MetricsAddr, "metrics", cfg.MetricsAddr, "serve Prometheus /metrics and /healthz on `ADDR`")
	fs.Var(funcValue{func() string { return fmt.Sprintf("%#o", cfg.SocketMode) }, func(v string) (err error) {
		cfg.SocketMode, err = parseMode(v)
		return err
	}}, "socket-mode", "`MODE` (octal) of the UNIX sockets the gateway creates")
	fs.Var(funcValue{func() string { return fmt.Sprintf("%#o", cfg.FileMode) }, func(v string) (err error) {
		cfg.FileMode, err = parseMode(v)
		return err
	}}, "file-mode", "exact `MODE` (octal) of the session files the gateway writes (default 0660 minus the umask)")
	fs.StringVar(&cfg.SessionsDir, "sessions", cfg.SessionsDir, "the sessions shared with the Python side: a `DIR`ectory (created if missing), or a PostgreSQL database as postgres://USER@HOST/DB (its table created if missing; see qxbridge-pgstore for the Python side)")
	fs.StringVar(&cfg.StagingDir, "staging-dir", cfg.StagingDir, "write session files in `DIR` and rename them into the session directory, so that a Python cron job running session3's delete_old_sessions never meets a temporary file; DIR must be outside the session directory, on the same filesystem")
	fs.BoolVar(&cfg.InPlace, "session-in-place", cfg.InPlace, "save sessions of a page (4 KiB) or less by writing over their files under the lock instead of replacing them: much cheaper on ext4, as safe against a killed process or a full disk, but a power loss can leave a session mixing two of its versions (store.WithInPlace)")
	fs.Var(routeFlag(false), "route", "serve requests under `PREFIX=TARGET` (repeatable; the longest prefix wins); TARGET is the name of a Go handler or of a pool of the configuration file, scgi://HOST:PORT[,HOST:PORT...] or scgi+unix:///PATH, and sees the whole path")
	fs.Var(routeFlag(true), "mount", "like -route, but the application is mounted at `PREFIX=TARGET`: it gets SCRIPT_NAME=PREFIX and PATH_INFO=the rest")
	cutoverFlags(fs, cfg, st)
	fs.Var(funcValue{set: func(v string) error {
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%q: want a route's PREFIX", v)
		}
		st.routeOpts = append(st.routeOpts, routeOpt{"unordered", v, func(r *Route) { r.Unordered = true }})
		return nil
	}}, "unordered", "exempt the route of `PREFIX` from per-session ordering (repeatable): only for paths that never change the session")
	fs.Var(notValue{&cfg.Ordering.Disabled}, "order", "serve the requests of one session one at a time, in arrival order, Go and Python alike (-order=false: concurrently, the last save wins)")
	fs.IntVar(&cfg.Ordering.MaxQueue, "order-queue", cfg.Ordering.MaxQueue, "requests of one session that may wait for their turn; one more is answered 503")
	fs.DurationVar(&cfg.Ordering.MaxWait, "order-wait", cfg.Ordering.MaxWait, "how long a request may wait for its session's turn before it is answered 503")
	fs.StringVar(&cfg.Ordering.LockDir, "order-lock-dir", cfg.Ordering.LockDir, "`DIR`ectory of the per-session lock files that order the gateways of one host (default: the session directory's name + \".locks\"; outside the session directory)")
	fs.StringVar(&cfg.Cookie.Name, "cookie-name", cfg.Cookie.Name, "session cookie name (Quixote's SESSION_COOKIE_NAME)")
	fs.StringVar(&cfg.Cookie.Path, "cookie-path", cfg.Cookie.Path, "session cookie path (default: SCRIPT_NAME + \"/\", as Quixote)")
	fs.StringVar(&cfg.Cookie.Domain, "cookie-domain", cfg.Cookie.Domain, "session cookie domain")
	fs.BoolVar(&cfg.Cookie.Secure, "cookie-secure", cfg.Cookie.Secure, "mark the session cookie secure")
	fs.BoolVar(&cfg.Cookie.HttpOnly, "cookie-httponly", cfg.Cookie.HttpOnly, "mark the session cookie httponly")
	fs.Var(funcValue{func() string { return sameSiteString(cfg.Cookie.SameSite) }, func(v string) (err error) {
		cfg.Cookie.SameSite, err = parseSameSite(v)
		return err
	}}, "cookie-samesite", "samesite attribute of the session cookie: `MODE` lax, strict or none")
	fs.StringVar(&st.className, "session-class", "", "Python class of sessions created in Go (default "+cfg.NewClass.String()+")")
	fs.StringVar(&st.classKind, "session-kind", "", "which built-in class -session-class derives from: "+kindList)
	fs.DurationVar(&cfg.MaxIdle, "max-idle", cfg.MaxIdle, "delete sessions idle for longer than this, periodically (0: never), and stale empty files")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "a session idle for longer is treated as absent and removed, on Go and Python pages (0: never)")
	fs.DurationVar(&cfg.MaxLifetime, "max-lifetime", cfg.MaxLifetime, "a session created longer ago is treated as absent and removed, however active, on Go and Python pages (0: never)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGTERM or SIGINT, how long requests in flight may take to finish")
	fs.IntVar(&cfg.BackendMaxConns, "backend-max-conns", cfg.BackendMaxConns, "connections per SCGI backend at most (0: no limit; set it to the worker's number of children)")
	fs.DurationVar(&cfg.BackendTimeout, "backend-timeout", cfg.BackendTimeout, "how long a backend may take to start its response")
	fs.DurationVar(&cfg.BackendDrainTimeout, "backend-drain-timeout", cfg.BackendDrainTimeout, "how long to go on reading a Python worker's response after its client left or it timed out, so that the session's turn lasts until the worker is done (0: 60s; negative: close at once)")
	fs.Int64Var(&cfg.BackendDrainBytes, "backend-drain-bytes", cfg.BackendDrainBytes, "how many bytes of such a response to read before giving up (0: 256 MiB)")
	fs.IntVar(&cfg.BackendWarmConns, "backend-warm-conns", cfg.BackendWarmConns, "connections per SCGI backend dialled ahead of need while requests keep coming (0: none; below the worker's children)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json")
	fs.Var(funcValue{func() string { return strings.ToLower(cfg.LogLevel.String()) }, func(v string) (err error) {
		cfg.LogLevel, err = parseLogLevel(v)
		return err
	}}, "log-level", "`LEVEL` of the log: debug, info, warn or error")
	return fs
}

// parseFlags returns the configuration for args: Config as the program set it, then
// the configuration file (-config), then the flags. The program's routes are
// defaults: routes from the file or the flags replace them all; flag routes are added
// to the file's, replacing one of the same prefix. getenv tells whether systemd passed
// listening sockets, in which case no default listener is added.
func (g *Gateway) parseFlags(args []string, stderr io.Writer, getenv func(string) string) (Config, defaultsUsed, flagState, error) {
	return g.parseFlagsOver(g.Config, args, stderr, getenv)
}

func (g *Gateway) parseFlagsOver(base Config, args []string, stderr io.Writer, getenv func(string) string) (Config, defaultsUsed, flagState, error) {
	var used defaultsUsed
	cfg := base.clone()
	var st flagState
	// The flag package would print an invalid flag's error and the whole usage; Run
	// prints the error once, with where the usage is.
	fs := g.flagSet(&cfg, &st, io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
		}
		return cfg, used, st, err
	}
	if fs.NArg() > 0 {
		return cfg, used, st, fmt.Errorf("unexpected argument %q (flags come before; the admin tool is `%s sessions`)", fs.Arg(0), g.name())
	}
	if st.version {
		return cfg, used, st, nil
	}
	fileRoutes := false
	if st.configFile != "" {
		// Again over the file's settings, so that the flags override them.
		cfg = base.clone()
		var err error
		if fileRoutes, err = loadFile(st.configFile, &cfg); err != nil {
			return cfg, used, st, err
		}
		file := st.configFile
		st = flagState{}
		fs = g.flagSet(&cfg, &st, io.Discard)
		if err := fs.Parse(args); err != nil {
			return cfg, used, st, err
		}
		st.configFile = file
	}
	if st.className != "" || st.classKind != "" {
		name := st.className
		if name == "" {
			name = cfg.NewClass.String()
		}
		c, err := parseClass(name, st.classKind)
		if err != nil {
			return cfg, used, st, fmt.Errorf("-session-class/-session-kind: %w", err)
		}
		cfg.NewClass = c
	}
	switch {
	case len(st.routes) > 0:
		seen := map[string]Route{}
		for _, r := range st.routes {
			if prev, dup := seen[r.match()]; dup {
				return cfg, used, st, fmt.Errorf("%v and %v cover the same prefix", prev, r)
			}
			seen[r.match()] = r
		}
		if !fileRoutes {
			cfg.Routes = nil
		}
		cfg.Routes = slices.DeleteFunc(cfg.Routes, func(r Route) bool { _, over := seen[r.match()]; return over })
		cfg.Routes = append(cfg.Routes, st.routes...)
	case !fileRoutes:
		used.routes = true
		if len(cfg.Routes) == 0 && len(g.TryRoutes) > 0 && g.tryOut(fs, getenv) {
			cfg.Routes = slices.Clone(g.TryRoutes)
		}
	}
	if err := applyRouteOpts(cfg.Routes, st.routeOpts); err != nil {
		return cfg, used, st, err
	}
	if cfg.HTTPAddr == "" && cfg.SCGIAddr == "" && !systemdActivated(getenv) {
		cfg.HTTPAddr = DefaultHTTPAddr
		used.listener = true
	}
	if err := cfg.validate(); err != nil {
		return cfg, used, st, err
	}
	if len(cfg.Routes) == 0 {
		msg := "no routes: give -route PREFIX=TARGET or -mount PREFIX=TARGET, or [[route]] in the configuration file"
		if len(g.TryRoutes) > 0 {
			msg += fmt.Sprintf(" (%s serves only when none of -%s is given)", describeRoutes(g.TryRoutes), strings.Join(tryOutFlags, ", -"))
		}
		return cfg, used, st, errors.New(msg)
	}
	if err := g.checkTargets(&cfg); err != nil {
		return cfg, used, st, err
	}
	return cfg, used, st, nil
}

// tryOutFlags are the flags that name a deployment: given any of them, Gateway.TryRoutes
// do not serve.
var tryOutFlags = []string{"route", "mount", "config", "sessions", "scgi"}

// tryOut reports whether the command line fs parsed names no deployment (see
// Gateway.TryRoutes): none of tryOutFlags, no SCGI socket from systemd, no Store.
func (g *Gateway) tryOut(fs *flag.FlagSet, getenv func(string) string) bool {
	deploy := g.Store != nil || systemdSCGI(getenv)
	fs.Visit(func(f *flag.Flag) {
		deploy = deploy || slices.Contains(tryOutFlags, f.Name)
	})
	return !deploy
}

// describeRoutes spells routes as "TARGET at PREFIX, ...".
func describeRoutes(routes []Route) string {
	var rs []string
	for _, r := range routes {
		rs = append(rs, r.Target+" at "+r.Prefix)
	}
	return strings.Join(rs, ", ")
}

// listen opens the listeners: the inherited systemd sockets first (named "http" and
// "metrics" serve those; any other name, or none, serves SCGI, as python-scgi takes
// its inherited socket), then the configured addresses.
func (g *Gateway) listen(inh []inherited) error {
	for _, in := range inh {
		kind := "scgi"
		if in.name == "http" || in.name == "metrics" {
			kind = in.name
		}
		g.listeners = append(g.listeners, boundListener{kind, in.l})
	}
	for _, a := range []struct{ kind, addr string }{
		{"http", g.Config.HTTPAddr}, {"scgi", g.Config.SCGIAddr}, {"metrics", g.Config.MetricsAddr},
	} {
		if a.addr == "" {
			continue
		}
		l, err := listen(a.addr, g.Config.SocketMode)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("-%s %s: %w", a.kind, a.addr, err)
		}
		g.listeners = append(g.listeners, boundListener{a.kind, l})
	}
	if g.addr("http") == "" && g.addr("scgi") == "" {
		g.closeListeners()
		return errors.New("no HTTP or SCGI listener: give -http or -scgi")
	}
	return nil
}

// boundListener is an open listener and what it serves.
type boundListener struct {
	kind string // "http", "scgi" or "metrics"
	l    net.Listener
}

// addr returns the address of the first listener of the kind Run opened, as the
// flags spell it, or "".
func (g *Gateway) addr(kind string) string {
	for _, b := range g.listeners {
		if b.kind == kind {
			return listenerAddr(b.l)
		}
	}
	return ""
}

func (g *Gateway) closeListeners() {
	for _, b := range g.listeners {
		b.l.Close()
	}
	g.listeners = nil
}

// serveUntil serves the listeners Run opened until ctx is done, then shuts down
// gracefully: the listeners close at once, requests in flight get up to
// Config.ShutdownTimeout to finish, and any still running after that are cut off. It
// returns an error only if a listener failed while serving.
func (g *Gateway) serveUntil(ctx context.Context) error {
	log := g.log()
	errc := make(chan error, len(g.listeners))
	for _, b := range g.listeners {
		serve := map[string]func(net.Listener) error{"http": g.Serve, "scgi": g.ServeSCGI, "metrics": g.ServeMetrics}[b.kind]
		go func() {
			err := serve(b.l)
			if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s listener %s: %w", b.kind, listenerAddr(b.l), err)
			}
			errc <- err
		}()
	}
	var failure error
	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; waiting for requests in flight", "timeout", g.Config.ShutdownTimeout)
	case failure = <-errc:
		log.Error("a listener failed; shutting down", "error", failure)
	}
	sctx, cancel := context.WithTimeout(context.Background(), g.Config.ShutdownTimeout)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		log.Warn("requests still running after the shutdown timeout are cut off", "timeout", g.Config.ShutdownTimeout)
		g.Close()
	}
	log.Info("stopped")
	return failure
}

// logStartup says what the gateway serves, where.
func (g *Gateway) logStartup(used defaultsUsed) {
	log := g.log()
	cfg := g.Config
	log.Info("sessions", "store", describeStore(g.Sessions()), "cookie", cfg.Cookie.Name, "new_session_class", g.manager.NewClass.String())
	for _, r := range cfg.Routes {
		log.Info("route", "prefix", r.Prefix, "target", r.Target, "mount", r.Mount, "unordered", r.Unordered)
	}
	if o := g.orderer; o != nil {
		lock := "within this gateway only"
		if d, ok := o.locker.(*LockDir); ok {
			lock = d.Dir()
		} else if o.locker != nil {
			lock = fmt.Sprintf("%T", o.locker)
		}
		log.Info("per-session ordering", "max_queue", o.maxQueue, "max_wait", o.maxWait, "lock", lock)
	} else {
		log.Warn("per-session ordering is off: concurrent requests of one session can lose each other's changes")
	}
	for _, b := range g.listeners {
		log.Info("listening", "kind", b.kind, "addr", listenerAddr(b.l))
	}
	if used.routes || used.listener {
		msg := "no flags given:"
		if !(used.routes && used.listener) {
			msg = "defaults:"
		}
		if used.routes {
			var rs []string
			for _, r := range cfg.Routes {
				rs = append(rs, r.Target+" serves "+r.Prefix)
			}
			msg += " " + strings.Join(rs, ", ")
		}
		if used.listener {
			if used.routes {
				msg += " at http://" + g.addr("http") + "/"
			} else {
				msg += " serving HTTP on " + g.addr("http")
			}
		}
		log.Info(msg, "sessions", describeStore(g.Sessions()))
	}
}
