package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
)

// Defaults of the serve command: what `go run ./cmd/scgi-gateway` does with no flags.
const (
	defaultHTTPAddr    = "127.0.0.1:8080"
	defaultSessionsDir = "sessions"
)

// config is the serve command's configuration, as parsed from its flags.
type config struct {
	HTTPAddr    string      // -http: plain HTTP listener ("" for none)
	SCGIAddr    string      // -scgi: SCGI listener ("" for none)
	MetricsAddr string      // -metrics: Prometheus and /healthz listener ("" for none)
	SocketMode  os.FileMode // -socket-mode: permissions of the UNIX sockets created
	SessionsDir string      // -sessions
	StagingDir  string      // -staging-dir: where saves write their files ("": in SessionsDir)
	Routes      []routeSpec // -route and -mount, in the order given

	Cookie   quixote.Cookie
	NewClass quixote.Class

	MaxIdle         time.Duration // -max-idle: idle sweep threshold (0: no sweep)
	ShutdownTimeout time.Duration // -shutdown-timeout

	BackendMaxConns int           // -backend-max-conns: scgi.Proxy.MaxConnsPerBackend
	BackendTimeout  time.Duration // -backend-timeout: scgi.Proxy.ResponseHeaderTimeout

	LogFormat string // text or json
	LogLevel  slog.Level

	// DefaultListener and DefaultRoute record which defaults applied, for the
	// start-up log line.
	DefaultListener, DefaultRoute bool
}

// routeSpec is one -route or -mount flag.
type routeSpec struct {
	Prefix string // as given, e.g. "/app/"
	Target string // as given, e.g. "scgi://127.0.0.1:4000"
	Mount  bool   // the prefix becomes SCRIPT_NAME
	Demo   bool   // the built-in demo app
	// Backends are the scgi.NewProxy addresses of a pool target.
	Backends []string
}

// match is the prefix a request path is compared with: the given prefix without its
// trailing slash ("" for "/").
func (s routeSpec) match() string { return strings.TrimSuffix(s.Prefix, "/") }

func (s routeSpec) String() string {
	flag := "-route"
	if s.Mount {
		flag = "-mount"
	}
	return flag + " " + s.Prefix + "=" + s.Target
}

// routeFlag collects repeated -route or -mount flags into one list, so that the
// order of the command line is kept in messages.
type routeFlag struct {
	routes *[]routeSpec
	mount  bool
}

func (f routeFlag) String() string { return "" }

func (f routeFlag) Set(v string) error {
	s, err := parseRoute(v, f.mount)
	if err != nil {
		return err
	}
	*f.routes = append(*f.routes, s)
	return nil
}

// parseRoute parses PREFIX=TARGET.
func parseRoute(v string, mount bool) (routeSpec, error) {
	prefix, target, ok := strings.Cut(v, "=")
	if !ok {
		return routeSpec{}, fmt.Errorf("%q: want PREFIX=TARGET, e.g. /app/=scgi://127.0.0.1:4000", v)
	}
	if !strings.HasPrefix(prefix, "/") {
		return routeSpec{}, fmt.Errorf("%q: the prefix must start with /", v)
	}
	if strings.ContainsAny(prefix, "?#\x00") || strings.Contains(prefix, "//") || slices.Contains(strings.Split(prefix, "/"), "..") {
		return routeSpec{}, fmt.Errorf("%q: the prefix must be a plain path", v)
	}
	s := routeSpec{Prefix: prefix, Target: target, Mount: mount}
	if mount && s.match() == "" {
		return routeSpec{}, fmt.Errorf("%q: mounting at / is what -route does; use -route /=%s", v, target)
	}
	backends, err := parseTarget(target)
	if err != nil {
		return routeSpec{}, fmt.Errorf("%q: %w", v, err)
	}
	s.Demo = backends == nil
	s.Backends = backends
	return s, nil
}

// parseTarget parses a route target: "demo" (nil backends), scgi://HOST:PORT[,HOST:PORT...]
// or scgi+unix:///PATH.
func parseTarget(t string) ([]string, error) {
	switch {
	case t == "demo":
		return nil, nil
	case strings.HasPrefix(t, "scgi://"):
		var out []string
		for hp := range strings.SplitSeq(strings.TrimPrefix(t, "scgi://"), ",") {
			u, err := url.Parse("scgi://" + hp)
			if err != nil || u.Host != hp || u.Port() == "" || u.Hostname() == "" {
				return nil, fmt.Errorf("target %q: %q is not HOST:PORT", t, hp)
			}
			if n, err := strconv.Atoi(u.Port()); err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("target %q: bad port in %q", t, hp)
			}
			out = append(out, hp)
		}
		return out, nil
	case strings.HasPrefix(t, "scgi+unix://"):
		path := strings.TrimPrefix(t, "scgi+unix://")
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("target %q: want scgi+unix:///absolute/path", t)
		}
		return []string{"unix:" + path}, nil
	}
	return nil, fmt.Errorf("unknown target %q: want demo, scgi://HOST:PORT[,HOST:PORT...] or scgi+unix:///PATH", t)
}

// parseClass parses -session-class and -session-kind: a built-in class by its dotted
// name, or an application class, which behaves like session3's Session unless kind says
// otherwise.
func parseClass(dotted, kind string) (quixote.Class, error) {
	builtin := map[string]quixote.Class{
		quixote.Session3Class.String():    quixote.Session3Class,
		quixote.DictSessionClass.String(): quixote.DictSessionClass,
		quixote.QuixoteClass.String():     quixote.QuixoteClass,
	}
	c, known := builtin[dotted]
	if !known {
		i := strings.LastIndexByte(dotted, '.')
		if i <= 0 || i == len(dotted)-1 || strings.ContainsAny(dotted, " /\x00") {
			return c, fmt.Errorf("-session-class %q: want a dotted Python class name such as myapp.sessions.MySession", dotted)
		}
		c = quixote.Class{Module: dotted[:i], Name: dotted[i+1:], Kind: quixote.KindSession3}
	}
	switch kind {
	case "":
	case "session3":
		c.Kind = quixote.KindSession3
	case "dict":
		c.Kind = quixote.KindDictSession
	case "quixote":
		c.Kind = quixote.KindQuixote
	default:
		return c, fmt.Errorf("-session-kind %q: want session3, dict or quixote", kind)
	}
	return c, nil
}

func parseSameSite(v string) (http.SameSite, error) {
	switch strings.ToLower(v) {
	case "":
		return 0, nil
	case "lax":
		return http.SameSiteLaxMode, nil
	case "strict":
		return http.SameSiteStrictMode, nil
	case "none":
		return http.SameSiteNoneMode, nil
	}
	return 0, fmt.Errorf("-cookie-samesite %q: want lax, strict or none", v)
}

// parseServeFlags parses the serve command's flags. getenv tells whether systemd
// passed listening sockets, in which case no default listener is added.
func parseServeFlags(args []string, stderr io.Writer, getenv func(string) string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("scgi-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.HTTPAddr, "http", "", "serve plain HTTP on `ADDR` (host:port or unix:/path; default "+defaultHTTPAddr+" when no other listener is given)")
	fs.StringVar(&cfg.SCGIAddr, "scgi", "", "serve SCGI for a front server on `ADDR` (host:port or unix:/path)")
	fs.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus /metrics and /healthz on `ADDR`")
	mode := fs.String("socket-mode", "0660", "permissions of UNIX sockets the gateway creates (octal)")
	fs.StringVar(&cfg.SessionsDir, "sessions", defaultSessionsDir, "the session `DIR`ectory shared with the Python side (created if missing)")
	fs.StringVar(&cfg.StagingDir, "staging-dir", "", "write session files in `DIR` and rename them into the session directory, so that a Python cron job running session3's delete_old_sessions never meets a temporary file; DIR must be outside the session directory, on the same filesystem")
	fs.Var(routeFlag{&cfg.Routes, false}, "route", "serve requests under `PREFIX=TARGET` (repeatable; the longest prefix wins); TARGET is demo, scgi://HOST:PORT[,HOST:PORT...] or scgi+unix:///PATH, and sees the whole path")
	fs.Var(routeFlag{&cfg.Routes, true}, "mount", "like -route, but the application is mounted at `PREFIX=TARGET`: it gets SCRIPT_NAME=PREFIX and PATH_INFO=the rest")
	fs.StringVar(&cfg.Cookie.Name, "cookie-name", quixote.DefaultCookieName, "session cookie name (Quixote's SESSION_COOKIE_NAME)")
	fs.StringVar(&cfg.Cookie.Path, "cookie-path", "", "session cookie path (default: SCRIPT_NAME + \"/\", as Quixote)")
	fs.StringVar(&cfg.Cookie.Domain, "cookie-domain", "", "session cookie domain")
	fs.BoolVar(&cfg.Cookie.Secure, "cookie-secure", false, "mark the session cookie secure")
	fs.BoolVar(&cfg.Cookie.HttpOnly, "cookie-httponly", false, "mark the session cookie httponly")
	sameSite := fs.String("cookie-samesite", "", "samesite attribute of the session cookie: lax, strict or none")
	class := fs.String("session-class", quixote.Session3Class.String(), "Python class of sessions created in Go")
	kind := fs.String("session-kind", "", "which built-in class -session-class derives from: session3, dict or quixote")
	fs.DurationVar(&cfg.MaxIdle, "max-idle", 0, "delete sessions idle for longer than this, periodically (0: never), and stale empty files")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM or SIGINT, how long requests in flight may take to finish")
	fs.IntVar(&cfg.BackendMaxConns, "backend-max-conns", 0, "connections per SCGI backend at most (0: no limit; set it to the worker's number of children)")
	fs.DurationVar(&cfg.BackendTimeout, "backend-timeout", 60*time.Second, "how long a backend may take to start its response")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags come before; the admin tool is `scgi-gateway sessions`)", fs.Arg(0))
	}

	m, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("-socket-mode %q: want an octal permission such as 0660", *mode)
	}
	cfg.SocketMode = os.FileMode(m)
	if cfg.Cookie.SameSite, err = parseSameSite(*sameSite); err != nil {
		return nil, err
	}
	if cfg.NewClass, err = parseClass(*class, *kind); err != nil {
		return nil, err
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return nil, fmt.Errorf("-log-format %q: want text or json", cfg.LogFormat)
	}
	if cfg.Cookie.Name == "" || strings.ContainsAny(cfg.Cookie.Name, "=;, \t\"\x00") {
		return nil, fmt.Errorf("-cookie-name %q: not a cookie name", cfg.Cookie.Name)
	}
	if cfg.MaxIdle < 0 || cfg.ShutdownTimeout < 0 || cfg.BackendTimeout < 0 || cfg.BackendMaxConns < 0 {
		return nil, errors.New("durations and counts must not be negative")
	}
	if cfg.SessionsDir == "" {
		return nil, errors.New("-sessions must name a directory")
	}

	seen := map[string]routeSpec{}
	for _, r := range cfg.Routes {
		if prev, dup := seen[r.match()]; dup {
			return nil, fmt.Errorf("%v and %v cover the same prefix", prev, r)
		}
		seen[r.match()] = r
	}
	if len(cfg.Routes) == 0 {
		cfg.Routes = []routeSpec{{Prefix: "/", Target: "demo", Demo: true}}
		cfg.DefaultRoute = true
	}
	if cfg.HTTPAddr == "" && cfg.SCGIAddr == "" && !systemdActivated(getenv) {
		cfg.HTTPAddr = defaultHTTPAddr
		cfg.DefaultListener = true
	}
	return cfg, nil
}
