package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
)

// Defaults that New puts into a Config.
const (
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultSessionsDir     = "sessions"
	DefaultSocketMode      = 0o660
	DefaultShutdownTimeout = 10 * time.Second
	DefaultBackendTimeout  = 60 * time.Second
)

// Config is what a gateway serves and how. New returns one with the defaults filled
// in; Main fills it from the flags and the configuration file on top of what the
// program set.
type Config struct {
	// Listeners, as host:port or unix:/path. Main adds DefaultHTTPAddr when none
	// of HTTPAddr and SCGIAddr is given and systemd passed no socket.
	HTTPAddr    string      // plain HTTP
	SCGIAddr    string      // SCGI, for a front server (nginx scgi_pass, ...)
	MetricsAddr string      // Prometheus /metrics and /healthz
	SocketMode  os.FileMode // permissions of the UNIX sockets the gateway creates
	// SCGIHalfClose says the front server may shut down its sending side of an SCGI
	// connection while it waits for the response (lighttpd's "tcp-fin-propagate"):
	// the gateway then does not take the end of a request's input for the client
	// leaving (scgi.Server.FrontEndHalfCloses), and notices a departed client only
	// when it writes to it. nginx, Apache and lighttpd by default do not half-close.
	SCGIHalfClose bool

	// SessionsDir is the session directory shared with the Python side (created if
	// missing), or a PostgreSQL database by its URL, postgres://USER@HOST/DB (its
	// sessions table created if missing; pgstore.Open takes the URL, and its Python
	// counterpart is the qxbridge-pgstore package). Gateway.Store, when set, replaces
	// both. StagingDir, when set, is where saves write their files before they are
	// renamed into SessionsDir (see store.WithStagingDir).
	SessionsDir string
	StagingDir  string
	// InPlace saves a session of one page (4 KiB) or less by writing it over its
	// file, under its lock, instead of swapping a new file in (store.WithInPlace):
	// a fraction of the cost on ext4, and the same guarantees against a process
	// killed or a full disk, but a power loss can leave a session that mixes two of
	// its versions. For a session directory only.
	InPlace bool
	// MaxIdle deletes sessions idle for longer, periodically (0: never).
	MaxIdle time.Duration
	// IdleTimeout and MaxLifetime end a session idle for longer or created longer
	// ago: when a Go page loads it, it is treated as absent and its file removed
	// (quixote.Manager.IdleTimeout, MaxLifetime; 0: never, as in session3); before a
	// request is forwarded to a Python page, the gateway removes it the same way
	// (quixote.Manager.Expire), so that Python serves the user as logged out.
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// FileMode, when not 0, is the exact permission of every session file the
	// gateway writes (store.WithFileMode); 0 means 0660 in a directory shared with
	// its group (store.SharedWithGroup), else the store's default, 0660 minus the
	// umask. A new session directory is made 0770 (setgid when its parent's group is
	// shared) either way.
	FileMode os.FileMode
	// Ordering serves the requests of one session one at a time, in arrival order,
	// Go and Python alike (on unless Ordering.Disabled).
	Ordering Ordering

	// Cookie is the session cookie, as Quixote's SESSION_COOKIE_* settings.
	Cookie quixote.Cookie
	// NewClass is the Python class of sessions created in Go; the zero Class means
	// session3's Session. Classes describes the application's session classes
	// (module, name, the built-in kind each derives from, has_info and
	// MAX_FORM_TOKENS overrides), so that Go treats their sessions as Python does.
	NewClass quixote.Class
	Classes  []quixote.Class
	// UserName names a session's user for the admin commands (sessions list,
	// delete -user NAME, which logs a user out everywhere) and for a database
	// store's user_name column; nil means quixote.Session.UserName (the user when it
	// is a str, else the first of an object's login, username, user_name, user_id,
	// id, name). The Python store (qxbridge_pgstore) fills user_name by the same
	// default rule: a team that changes it here passes the same rule there
	// (PostgresSessionStore(..., user_name=...)).
	UserName func(*quixote.Session) string

	// Routes maps path prefixes to what serves them; the longest prefix wins. Under
	// Main (or Run), routes set here are the program's defaults: the configuration
	// file's routes replace them all, and so do routes given by flags when no file
	// has routes (see the package doc, Routes).
	Routes []Route
	// Pools are pools of Python workers by name, for routes to name as their target.
	Pools map[string]Pool
	// Cutover configures the routes that move from Python to a Go candidate
	// (Route.Candidate).
	Cutover Cutover

	// ShutdownTimeout is how long requests in flight may take to finish on
	// Shutdown (and on SIGTERM or SIGINT under Main).
	ShutdownTimeout time.Duration
	// BackendMaxConns bounds the connections per Python worker (0: no bound; set
	// it to the worker's number of children). BackendTimeout is how long a worker
	// may take to start its response.
	BackendMaxConns int
	BackendTimeout  time.Duration
	// BackendWarmConns is how many connections to each Python worker are dialled
	// ahead of need while requests keep coming (scgi.Proxy.WarmConns; 0: none). Each
	// holds a waiting python-scgi child: keep it, times the number of gateways, below
	// the worker's children.
	BackendWarmConns int
	// BackendDrainTimeout and BackendDrainBytes bound how long, and how much, the
	// gateway goes on reading from a worker whose client left or whose response
	// timed out, so that the session's turn lasts until the worker is done with the
	// request (scgi.Proxy.DrainTimeout and DrainBytes; 0: 60 s and 256 MiB). A
	// negative BackendDrainTimeout closes the connection at once.
	BackendDrainTimeout time.Duration
	BackendDrainBytes   int64

	// LogFormat ("text" or "json") and LogLevel configure the logger Main makes.
	LogFormat string
	LogLevel  slog.Level
}

// defaultConfig is the configuration New starts from.
func defaultConfig() Config {
	return Config{
		SocketMode:      DefaultSocketMode,
		SessionsDir:     DefaultSessionsDir,
		Ordering:        Ordering{MaxQueue: DefaultOrderQueue, MaxWait: DefaultOrderWait},
		Cookie:          quixote.Cookie{Name: quixote.DefaultCookieName},
		NewClass:        quixote.Session3Class,
		Cutover:         defaultCutover(),
		ShutdownTimeout: DefaultShutdownTimeout,
		BackendTimeout:  DefaultBackendTimeout,
		LogFormat:       "text",
		LogLevel:        slog.LevelInfo,
	}
}

// clone returns a copy that shares no slice with c.
func (c Config) clone() Config {
	c.Routes = slices.Clone(c.Routes)
	c.Classes = slices.Clone(c.Classes)
	c.Cutover = c.Cutover.clone()
	if c.Pools != nil {
		pools := make(map[string]Pool, len(c.Pools))
		for n, p := range c.Pools {
			p.Addresses = slices.Clone(p.Addresses)
			pools[n] = p
		}
		c.Pools = pools
	}
	return c
}

// Route sends the requests whose path is Prefix or lies below it to Target: "/app/"
// and "/app" both match "/app", "/app/" and "/app/x", but not "/apple"; "/" matches
// every path.
//
// Target is the name of a Go handler registered with Gateway.Handle, the name of a
// pool in Config.Pools, or a pool of Python workers by address:
// "scgi://HOST:PORT[,HOST:PORT...]" (balanced by least connections, resting a failing
// one) or "scgi+unix:///PATH".
//
// Without Mount the target sees the whole path, and SCRIPT_NAME is what an SCGI front
// server sent when the path lies under it, else "". With Mount the application is
// mounted at Prefix: SCRIPT_NAME is the prefix (from which Quixote, and the session
// manager of a Go route, derive the cookie path) and PATH_INFO, or a Go handler's
// r.URL.Path, is the rest.
//
// A Python route can carry Candidate, the name of a Go handler written to replace it,
// and move to it in steps (see Config.Cutover): Shadow runs the candidate beside
// Python on safe requests, on a read-only copy of the session, and compares the
// answers; Rollout is the percentage of sessions (0 to 100, sticky by session id) it
// serves; Fallback answers a safe request with Python when the candidate panics or
// answers 5xx.
//
// Unordered exempts the route from per-session ordering (Config.Ordering): its
// requests are served at once even while another request of their session is in
// flight. Use it only for paths that never change the session (static files, a
// health page): a request there that saves its session can undo another's change.
type Route struct {
	Prefix    string
	Target    string
	Mount     bool
	Unordered bool

	Candidate string
	Rollout   float64
	Shadow    bool
	Fallback  bool
}

// String names the route in error messages and logs, whichever source gave it (a
// flag, the configuration file or code): route "/reports/" → reports, or mount
// "/app/" → scgi+unix:///run/app.sock.
func (r Route) String() string {
	kind := "route"
	if r.Mount {
		kind = "mount"
	}
	return fmt.Sprintf("%s %q → %s", kind, r.Prefix, r.Target)
}

// match is the prefix a request path is compared with: the given prefix without its
// trailing slash ("" for "/").
func (r Route) match() string { return strings.TrimSuffix(r.Prefix, "/") }

// handlerName is the form of a Go handler's name: it cannot be mistaken for a pool.
var handlerName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// check validates a route's prefix and the form of its target. Whether a named
// handler exists is checked when the routing table is built.
func (r Route) check() error {
	if !strings.HasPrefix(r.Prefix, "/") {
		return fmt.Errorf("%v: the prefix must start with /", r)
	}
	if strings.ContainsAny(r.Prefix, "?#\x00") || strings.Contains(r.Prefix, "//") || slices.Contains(strings.Split(r.Prefix, "/"), "..") {
		return fmt.Errorf("%v: the prefix must be a plain path", r)
	}
	if r.Mount && r.match() == "" {
		return fmt.Errorf("%v: mounting at / is what -route does; use -route /=%s", r, r.Target)
	}
	if _, err := parseTarget(r.Target); err != nil {
		return fmt.Errorf("%v: %w", r, err)
	}
	return r.checkCutover()
}

// parseRoute parses PREFIX=TARGET.
func parseRoute(v string, mount bool) (Route, error) {
	prefix, target, ok := strings.Cut(v, "=")
	if !ok {
		return Route{}, fmt.Errorf("%q: want PREFIX=TARGET, e.g. /app/=scgi://127.0.0.1:4000", v)
	}
	r := Route{Prefix: prefix, Target: target, Mount: mount}
	return r, r.check()
}

// parseTarget parses a route target: a handler name (nil backends), or a pool:
// scgi://HOST:PORT[,HOST:PORT...] or scgi+unix:///PATH, returned as scgi.NewProxy
// addresses.
func parseTarget(t string) ([]string, error) {
	switch {
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
	case handlerName.MatchString(t):
		return nil, nil
	}
	return nil, fmt.Errorf("unknown target %q: want the name of a Go handler, scgi://HOST:PORT[,HOST:PORT...] or scgi+unix:///PATH", t)
}

// parseClass parses a session class name and kind (-session-class, -session-kind):
// a built-in class by its dotted name, or an application class, which behaves like
// session3's Session unless kind says otherwise.
// kindNames are the names -session-kind and a class's kind in the configuration file
// take: each Kind's String() name, and "dict" for a DictSession.
var kindNames = map[string]quixote.Kind{
	quixote.KindSession3.String():    quixote.KindSession3,
	quixote.KindDictSession.String(): quixote.KindDictSession,
	"dict":                           quixote.KindDictSession,
	quixote.KindQuixote.String():     quixote.KindQuixote,
	quixote.KindSession4.String():    quixote.KindSession4,
}

// kindList names the kinds for usage and error messages.
const kindList = "session3, dict (or dictsession), quixote or session4"

func parseClass(dotted, kind string) (quixote.Class, error) {
	builtin := map[string]quixote.Class{
		quixote.Session3Class.String():    quixote.Session3Class,
		quixote.DictSessionClass.String(): quixote.DictSessionClass,
		quixote.QuixoteClass.String():     quixote.QuixoteClass,
		quixote.Session4Class.String():    quixote.Session4Class,
	}
	c, known := builtin[dotted]
	if !known {
		i := strings.LastIndexByte(dotted, '.')
		if i <= 0 || i == len(dotted)-1 || strings.ContainsAny(dotted, " /\x00") {
			return c, fmt.Errorf("session class %q: want a dotted Python class name such as myapp.sessions.MySession", dotted)
		}
		c = quixote.Class{Module: dotted[:i], Name: dotted[i+1:], Kind: quixote.KindSession3}
	}
	if kind != "" {
		k, ok := kindNames[kind]
		if !ok {
			return c, fmt.Errorf("session kind %q: want %s", kind, kindList)
		}
		c.Kind = k
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
	return 0, fmt.Errorf("cookie samesite %q: want lax, strict or none", v)
}

func sameSiteString(s http.SameSite) string {
	switch s {
	case http.SameSiteLaxMode:
		return "lax"
	case http.SameSiteStrictMode:
		return "strict"
	case http.SameSiteNoneMode:
		return "none"
	}
	return ""
}

// parseMode reads a permission in octal (-socket-mode, -file-mode).
func parseMode(v string) (os.FileMode, error) {
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %q: want an octal permission such as 0660", v)
	}
	return os.FileMode(m), nil
}

func parseLogLevel(v string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", v)
	}
	return l, nil
}

// validate checks a configuration as a whole: the rules every source of it (code,
// file, flags) must meet.
func (c *Config) validate() error {
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	if c.Cookie.Name == "" || strings.ContainsAny(c.Cookie.Name, "=;, \t\"\x00") {
		return fmt.Errorf("cookie name %q: not a cookie name", c.Cookie.Name)
	}
	if strings.HasPrefix(c.Cookie.Name, "$") {
		return fmt.Errorf("cookie name %q: Quixote's cookie parser ignores names starting with $", c.Cookie.Name)
	}
	if c.MaxIdle < 0 || c.IdleTimeout < 0 || c.MaxLifetime < 0 || c.ShutdownTimeout < 0 || c.BackendTimeout < 0 || c.BackendMaxConns < 0 || c.BackendWarmConns < 0 || c.BackendDrainBytes < 0 {
		return errors.New("durations and counts must not be negative")
	}
	if c.FileMode > 0o777 {
		return fmt.Errorf("file mode %#o: not a permission", c.FileMode)
	}
	if c.SocketMode > 0o777 {
		return fmt.Errorf("socket mode %#o: not a permission", c.SocketMode)
	}
	if c.SessionsDir == "" {
		return errors.New("the session directory must be named")
	}
	if IsDatabaseURL(c.SessionsDir) && c.StagingDir != "" {
		return errors.New("a staging directory is for a session directory; the sessions are in a database")
	}
	if IsDatabaseURL(c.SessionsDir) && c.InPlace {
		return errors.New("in-place saves are for a session directory; the sessions are in a database")
	}
	if err := c.Ordering.check(c.SessionsDir); err != nil {
		return err
	}
	if err := c.Cutover.check(); err != nil {
		return err
	}
	for name, p := range c.Pools {
		if err := p.check(name); err != nil {
			return err
		}
	}
	seen := map[string]Route{}
	for _, r := range c.Routes {
		if err := r.check(); err != nil {
			return err
		}
		if prev, dup := seen[r.match()]; dup {
			return fmt.Errorf("%v and %v cover the same prefix", prev, r)
		}
		seen[r.match()] = r
	}
	return nil
}
