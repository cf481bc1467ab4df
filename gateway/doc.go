// Package gateway is the gateway a Quixote site puts between its front server (nginx,
// Apache, lighttpd) and its Python workers to move to Go one URL at a time. It serves
// the routes already written in Go, with the Quixote sessions both sides share
// (session3's session files, under the same flock(2) locks), and forwards every other
// route over SCGI to the Python workers.
//
// # Registering a handler
//
// A Go page is an ordinary http.Handler, registered under a name; routes name it as
// their target, in code, in flags (-route /reports/=reports) or in the configuration
// file. The gateway serves it behind the session manager (quixote.Manager), so the
// handler reads and changes the request's session with quixote.SessionFrom:
//
//	func main() {
//		g := gateway.New()
//		g.HandleFunc("reports", func(w http.ResponseWriter, r *http.Request) {
//			s := quixote.SessionFrom(r) // loaded from the session directory, saved after
//			user, _ := s.UserString()
//			fmt.Fprintf(w, "reports for %s\n", user)
//		})
//		g.Main()
//	}
//
// and the program runs as the stock scgi-gateway does, with its own page in the routing:
//
//	myapp-gateway -scgi unix:/run/qxbridge/gateway.sock -sessions /var/lib/myapp/sessions \
//	    -route /reports/=reports -route /=scgi://127.0.0.1:4000
//
// Main gives the program every flag of scgi-gateway, the sessions administration
// commands, graceful shutdown on SIGTERM and SIGINT, systemd socket activation, the
// request log and the metrics. A program that runs its own listeners sets Config
// instead, and calls Open, then Serve, ServeSCGI or ServeMetrics, and Shutdown.
//
// # Routes
//
// A Route maps a path prefix to a Go handler's name or to a pool of Python workers
// (scgi://HOST:PORT[,HOST:PORT...], scgi+unix:///PATH); the longest matching prefix
// wins, and a path no route matches is answered 404. A mounted route (Route.Mount,
// -mount) gives its application SCRIPT_NAME = the prefix and PATH_INFO = the rest, as a
// Quixote application configured for a sub-path expects.
//
// Main and Run take the routes from three places. The program's own (Config.Routes,
// set in code) are defaults; routes in the configuration file ([[route]], [[mount]])
// replace them all; routes given by flags (-route, -mount) are added to the file's,
// each replacing a file route of the same prefix, and without file routes they
// replace the program's all. Gateway.TryRoutes serve only when none of these gives a
// route and the command line names no deployment. Every other setting is layered the
// same way, field by field: code, then the file, then the flags; SIGHUP reads the
// file and the same flags again over the program's configuration.
//
// Every request forwarded to Python passes quixote.Shield first: a session cookie that
// Quixote would read as an invalid session id (session3 uses the cookie value as a
// file name unchecked) is cut out of the request, logged and counted. Go routes read
// the session id with the same cookie grammar, so both sides pick the same session.
//
// # Per-session ordering
//
// The gateway serves the requests of one session (a valid id in the session cookie)
// one at a time, in the order they arrived, Go and Python alike, so that no request
// saves its copy of the session over another's change (see Ordering: the queue and
// wait bounds, past which a request is answered 503 with Retry-After, and the lock
// directory through which the gateways of one host order each other). A pool sends a
// session's requests to the same worker while it is up (scgi.Proxy.Affinity). The
// sessions administration commands set and delete take a session's turn too. Without
// ordering (-order=false), the session manager still orders the Go requests of the
// process (quixote.Manager.OneAtATime); with it, the manager does not lock again.
//
// # Configuration file
//
// The configuration file (-config FILE) is TOML. Every key is optional: a key the
// file sets overrides what the program set in code, and a flag given on the command
// line overrides the file. An unknown key is an error, so that a misspelt setting is
// not silently ignored.
//
//	[listen]
//	http = "127.0.0.1:8080"             # -http
//	scgi = "unix:/run/qxbridge/gateway.sock"   # -scgi
//	metrics = "127.0.0.1:9100"          # -metrics
//	socket_mode = "0660"                # -socket-mode
//	scgi_half_close = false             # -scgi-half-close
//
//	[sessions]
//	dir = "/var/lib/myapp/sessions"     # -sessions: a directory, or postgres://USER@HOST/DB
//	staging_dir = ""                    # -staging-dir
//	in_place = false                    # -session-in-place
//	max_idle = "24h"                    # -max-idle
//	idle_timeout = "2h"                 # -idle-timeout
//	file_mode = "0660"                  # -file-mode
//	max_lifetime = "24h"                # -max-lifetime
//	new_class = "myapp.session.MySession"   # -session-class
//
//	[[sessions.class]]                  # an application session class
//	name = "myapp.session.MySession"
//	kind = "session3"                   # session3, dict, quixote or session4: what it derives from
//	max_form_tokens = 32                # its MAX_FORM_TOKENS, when it overrides it
//
//	[ordering]                          # per-session ordering
//	off = false                         # -order=false
//	max_queue = 15                      # -order-queue
//	max_wait = "30s"                    # -order-wait
//	lock_dir = "/var/lib/myapp/sessions.locks"   # -order-lock-dir
//
//	[cookie]                            # Quixote's SESSION_COOKIE_* settings
//	name = "QX_session"
//	path = "/"
//	domain = ""
//	secure = true
//	httponly = true
//	samesite = "lax"
//
//	[limits]
//	shutdown_timeout = "10s"
//	backend_max_conns = 5               # per worker, for pools without their own
//	backend_timeout = "60s"
//	backend_warm_conns = 0              # connections dialled ahead per worker (see -backend-warm-conns)
//	backend_drain_timeout = "60s"       # reading on after a client left (see -backend-drain-timeout)
//	backend_drain_bytes = 268435456     # at most this much of such a response
//
//	[log]
//	format = "json"
//	level = "info"
//
//	[pool.python]                       # a pool of Python workers, by name
//	addresses = ["127.0.0.1:4000", "127.0.0.1:4001"]   # or "unix:/run/myapp/scgi.sock"
//	max_conns = 5                       # overrides backend_max_conns
//	timeout = "30s"                     # overrides backend_timeout
//	warm_conns = 1                      # overrides backend_warm_conns (default 0)
//
//	[[route]]
//	prefix = "/reports/"
//	target = "reports"                  # a Go handler's name, a pool's name, or scgi://...
//
//	[[route]]
//	prefix = "/static/"
//	target = "python"
//	unordered = true                    # -unordered /static/: never waits for its session
//
//	[[route]]
//	prefix = "/"
//	target = "python"
//
//	[[mount]]                           # a route with mount = true
//	prefix = "/app/"
//	target = "scgi+unix:///run/app/scgi.sock"
//
//	[[route]]                           # a Python route moving to Go (see below)
//	prefix = "/cart/"
//	target = "python"
//	candidate = "cart"                  # -candidate /cart/=cart
//	shadow = true                       # -shadow /cart/
//	rollout = 10                        # -rollout /cart/=10 (percent of sessions)
//	fallback = true                     # -fallback /cart/
//
//	[cutover]                           # how routes with a candidate move
//	safe_methods = ["GET", "HEAD"]      # -safe-methods: may run twice
//	rollout_cookie = "QX_rollout"       # -rollout-cookie ("" for none)
//	override_header = "X-QX-Route"      # -override-header ("" for none)
//	override_cookie = "QX_route"        # -override-cookie ("" for none)
//	compare_headers = ["Content-Type", "Location"]   # -compare-headers
//	ignore_space = false                # -shadow-ignore-space
//	max_shadows = 4                     # -max-shadows
//	samples = 20                        # -shadow-samples: differences kept per route
//	max_body = 1048576                  # -cutover-max-body, bytes
//
//	[[cutover.replace]]                 # -shadow-replace 'REGEXP=>REPLACEMENT'
//	pattern = 'name="_form_token" value="[^"]*"'
//	with = 'name="_form_token" value=""'
//
// The routes of the file replace the routes the program set in code; -route and
// -mount flags are added to the file's, replacing a file route of the same prefix.
// On SIGHUP, Run reads the file again and applies its routes and pools (see Reload).
//
// # Session stores
//
// Sessions live where Config.SessionsDir (-sessions, sessions.dir) says: a session
// directory shared with session3's DirectorySessionStore (store.Directory), or, given
// a postgres:// URL, a PostgreSQL table shared with the qxbridge-pgstore Python
// package (store/pgstore), for a site whose Python and Go processes run on several
// hosts. Open creates the directory or the table if missing. A program with a store
// of its own sets Gateway.Store to any quixote.IterableStore before Open (scs-style);
// Sessions returns the store in use. The Go routes, the idle sweep, the metrics,
// /healthz and the sessions administration commands (-sessions DIR or -sessions postgres://…)
// work alike on either. Per-session ordering takes each session's turn through the
// store's own lock when the store has one (Ordering.Locker): in PostgreSQL an
// advisory lock, which orders the gateways of every host sharing the database.
//
// When the database cannot answer (down, restarting, full, too slow), a Go page whose
// session cannot be loaded is answered 503, the failure is logged and counted
// (qxbridge_session_operations_total{result="unavailable"}), /healthz says unhealthy,
// and the gateway serves again by itself once the database is back; a session is
// always stored whole, old bytes or new. `sessions migrate -from DIR -to postgres://…`
// (or the reverse) moves a deployment's sessions, idempotently: run again, it copies
// only what is missing or changed.
//
// # Moving a route in steps
//
// A Python route can name a Go candidate, a handler written to replace it
// (Route.Candidate; candidate = "cart" in a [[route]] of the file; -candidate
// /cart/=cart), and move to it in steps, each changed by a reload:
//
//   - Shadow (shadow = true, -shadow /cart/): Python answers; for the safe methods
//     (Cutover.SafeMethods, default GET and HEAD) the candidate then runs in the
//     background on a copy of the session read before Python served the request,
//     through a read-only quixote.Manager (nothing saved, no cookie sent), and the two
//     answers are compared: status, Cutover.CompareHeaders, and the body after the
//     Cutover.Replace rules (and without white space with Cutover.IgnoreSpace). At most
//     Cutover.MaxShadows run at once; a request that finds none free is not shadowed
//     and is counted as dropped. The counts and the latest differences with a unified
//     diff are served at /shadow on the metrics listener, which `scgi-gateway shadow
//     report ROUTE` prints; they hold real users' pages, so the metrics listener
//     is for operators only. Under per-session ordering the copy is read in the
//     session's turn, so it is the session Python then loads; the shadow run comes
//     after the turn and never holds the session's next request.
//   - Rollout (rollout = 30, -rollout /cart/=30): the percentage of sessions the
//     candidate serves. A session's side is its id's SHA-256 (first 8 bytes, modulo
//     10000) compared with the percentage in hundredths: the same on every host and at
//     every start, and raising the percentage moves sessions to Go only. A visitor
//     without a session gets Cutover.RolloutCookie, whose random value places them the
//     same way and keeps them there after logging in. Cutover.OverrideHeader
//     (X-QX-Route: go or python) and Cutover.OverrideCookie (QX_route) pick a side
//     when configured (off by default), with Cutover.OverrideToken as go:TOKEN.
//   - Fallback (fallback = true, -fallback /cart/): on a safe request the candidate's
//     answer is held (up to Cutover.MaxBody) until it is known; a panic or a 5xx is
//     replaced by Python's answer. On another method a panic is answered 500.
//
// The request log adds side and reason (rollout, new, override, fallback) to the
// requests of these routes; the metrics count them by route.
//
// # Metrics and logs
//
// Registry serves the gateway's metrics (requests and their duration by route and
// status, backend state and errors, rejected session cookies, session store
// operations and lock waits, requests waiting for their session's turn, their waits
// and refusals, idle sweeps, reloads), the Go runtime's and the
// process's, and qxbridge_build_info; a program registers its own series on it. Each
// request is logged as one log/slog record, with its id: the X-Request-ID it came
// with when valid, else one the gateway makes, which Go handlers read with
// RequestID, Python workers receive as HTTP_X_REQUEST_ID and the response carries.
// The JSON log writes durations in seconds ("duration_s"). -version prints the build.
package gateway
