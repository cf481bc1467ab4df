package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/scgi"
)

// Defaults of Cutover that New puts into a Config, and the conventional names of
// the staff override (Cutover.OverrideHeader, OverrideCookie), which is off unless
// configured.
const (
	DefaultRolloutCookie  = "QX_rollout"
	DefaultOverrideHeader = "X-QX-Route"
	DefaultOverrideCookie = "QX_route"
	DefaultMaxShadows     = 4
	DefaultShadowSamples  = 20
	DefaultCutoverMaxBody = 1 << 20
)

// Cutover configures the routes that move from Python to a Go candidate
// (Route.Candidate): which requests may run twice, how a session's side is kept, how
// shadow answers are compared, and the bounds of all of it.
type Cutover struct {
	// SafeMethods are the methods a request may be run with twice: shadowed (run
	// on the candidate beside Python), or answered by Python after the candidate
	// failed (Route.Fallback). nil means GET and HEAD.
	SafeMethods []string
	// RolloutCookie is the cookie the gateway sets, with a random value, on a
	// request of a rollout route that has no session yet: the value then decides
	// the side as a session id does, so that a visitor stays on one side before
	// and after logging in. "" sets none, and such requests go to Python.
	RolloutCookie string
	// OverrideHeader and OverrideCookie let a request choose its side ("go" or
	// "python") on any route with a candidate, the header first: for staff to see
	// the Go page before, or after, the users (a candidate that is only shadowed,
	// or at 0%). Both are off ("") unless configured; DefaultOverrideHeader and
	// DefaultOverrideCookie are the conventional names.
	OverrideHeader string
	OverrideCookie string
	// OverrideToken, when set, is a secret the override must carry: the header or
	// cookie value is then SIDE:TOKEN (X-QX-Route: go:TOKEN); a value without the
	// right token is ignored. Without it any client that sends the header or cookie
	// picks its side.
	OverrideToken string
	// CompareHeaders are the response headers a shadow comparison compares,
	// besides the status and the body. nil means Content-Type and Location.
	CompareHeaders []string
	// Replace rewrites both bodies before a comparison, in order (a CSRF token, a
	// time stamp); IgnoreSpace then ignores all white space, as diff -w does.
	Replace     []Replace
	IgnoreSpace bool
	// MaxShadows bounds the shadow runs in progress; a request that finds them all
	// busy is not shadowed, and counted as dropped. 0 means DefaultMaxShadows.
	MaxShadows int
	// Samples is how many differences each route keeps for the report (the most
	// recent). 0 means DefaultShadowSamples.
	Samples int
	// MaxBody bounds what is held in memory per request: a request body replayed to
	// the second side, a candidate's response held back until it is known not to
	// fail, and each response a comparison reads. Beyond it the request is served
	// without a shadow or a fallback. 0 means DefaultCutoverMaxBody. A request with
	// a body on the HTTP listener is served without a shadow or a fallback too:
	// only the SCGI listener bounds how slowly a body may arrive before it is
	// replayed (scgi.BodyLimits; the proxy applies them to the HTTP listener's).
	MaxBody int
}

// Replace is a rewriting rule of shadow comparisons: every match of Pattern (a Go
// regular expression) is replaced by With, in which $1 and ${name} stand for groups.
type Replace struct {
	Pattern string
	With    string
}

func defaultCutover() Cutover {
	return Cutover{
		SafeMethods:    []string{http.MethodGet, http.MethodHead},
		RolloutCookie:  DefaultRolloutCookie,
		CompareHeaders: []string{"Content-Type", "Location"},
		MaxShadows:     DefaultMaxShadows,
		Samples:        DefaultShadowSamples,
		MaxBody:        DefaultCutoverMaxBody,
	}
}

func (c Cutover) clone() Cutover {
	c.SafeMethods = slices.Clone(c.SafeMethods)
	c.CompareHeaders = slices.Clone(c.CompareHeaders)
	c.Replace = slices.Clone(c.Replace)
	return c
}

var methodToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (c *Cutover) check() error {
	for _, m := range c.SafeMethods {
		if !methodToken.MatchString(m) {
			return fmt.Errorf("safe method %q: not an HTTP method", m)
		}
	}
	for _, h := range c.CompareHeaders {
		if !methodToken.MatchString(h) {
			return fmt.Errorf("compared header %q: not a header name", h)
		}
	}
	for _, n := range []string{c.RolloutCookie, c.OverrideCookie} {
		if strings.ContainsAny(n, "=;, \t\"\x00") || strings.HasPrefix(n, "$") {
			return fmt.Errorf("cookie name %q: not a cookie name", n)
		}
	}
	if c.OverrideHeader != "" && !methodToken.MatchString(c.OverrideHeader) {
		return fmt.Errorf("override header %q: not a header name", c.OverrideHeader)
	}
	if strings.ContainsAny(c.OverrideToken, "=;, \t\"\\\x00") || !utf8.ValidString(c.OverrideToken) {
		return errors.New("override token: white space, quotes, backslashes, \"=\", \";\" and \",\" cannot be sent in a cookie")
	}
	for _, r := range c.Replace {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			return fmt.Errorf("shadow replace %q: %w", r.Pattern, err)
		}
	}
	if c.MaxShadows < 0 || c.Samples < 0 || c.MaxBody < 0 {
		return errors.New("cutover limits must not be negative")
	}
	return nil
}

// checkCutover checks the cutover settings of a route: a candidate only on a
// Python route, and a percentage between 0 and 100.
func (r Route) checkCutover() error {
	if r.Candidate == "" {
		if r.Rollout != 0 || r.Shadow || r.Fallback {
			return fmt.Errorf("%v: rollout, shadow and fallback need a Go candidate (-candidate %s=HANDLER)", r, r.Prefix)
		}
		return nil
	}
	if !handlerName.MatchString(r.Candidate) {
		return fmt.Errorf("%v: candidate %q is not a handler name", r, r.Candidate)
	}
	if math.IsNaN(r.Rollout) || r.Rollout < 0 || r.Rollout > 100 {
		return fmt.Errorf("%v: rollout %v: want a percentage from 0 to 100", r, r.Rollout)
	}
	return nil
}

// Sides of a route with a candidate, and why a request went to one.
const (
	sideGo     = "go"
	sidePython = "python"

	reasonRollout  = "rollout"  // the session's (or rollout cookie's) place in the percentage
	reasonNew      = "new"      // no session and no rollout cookie yet
	reasonOverride = "override" // the staff header or cookie
	reasonFallback = "fallback" // the candidate failed on a safe method
)

// bucket places a session id (or a rollout cookie's value) in 0..9999: the first 8
// bytes of its SHA-256, modulo 10000. It is the same on every host and at every
// start, and a route's percentage p sends the buckets below p×100 to Go, so raising
// the percentage moves sessions from Python to Go only.
func bucket(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(sum[:8]) % 10000
}

// basisPoints is a percentage in hundredths.
func basisPoints(pct float64) uint64 { return uint64(math.Round(pct * 100)) }

// rolloutValue is the form of a rollout cookie's value the gateway sets.
var rolloutValue = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// cutoverMetrics are the figures of routes with a candidate.
type cutoverMetrics struct {
	served      *prometheus.CounterVec // route, side, reason
	comparisons *prometheus.CounterVec // route, outcome
	fallbacks   *prometheus.CounterVec // route, cause
	panics      *prometheus.CounterVec // route
	percent     *prometheus.GaugeVec   // route
}

func newCutoverMetrics(reg prometheus.Registerer) *cutoverMetrics {
	f := promauto.With(reg)
	return &cutoverMetrics{
		served: f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_cutover_requests_total",
			Help: "Requests of routes with a Go candidate, by route, the side that answered (go, python) and why (rollout, new, override, fallback)."}, []string{"route", "side", "reason"}),
		comparisons: f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_shadow_comparisons_total",
			Help: "Shadow runs of a Go candidate beside Python, by route and outcome: same, differs, go_failed (panic or 5xx), dropped (all shadow slots busy), skipped (a body over the limit or on the HTTP listener, or the session unreadable)."}, []string{"route", "outcome"}),
		fallbacks: f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_fallbacks_total",
			Help: "Safe requests Python answered because the Go candidate failed them, by route and cause (panic, status)."}, []string{"route", "cause"}),
		panics: f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_candidate_panics_total",
			Help: "Panics of Go candidates, shadow runs included, by route."}, []string{"route"}),
		percent: f.NewGaugeVec(prometheus.GaugeOpts{Name: "qxbridge_rollout_percent",
			Help: "The percentage of sessions a route with a Go candidate serves with it, as last configured."}, []string{"route"}),
	}
}

// cutoverState is what outlives a routing table: the metrics, the shadow slots and
// each route's shadow report.
type cutoverState struct {
	metrics *cutoverMetrics

	mu      sync.Mutex
	slots   chan struct{}
	reports map[string]*shadowReport // by route prefix
	routes  map[string]Route         // the cutover settings last built, by prefix
}

func newCutoverState(reg prometheus.Registerer) *cutoverState {
	return &cutoverState{metrics: newCutoverMetrics(reg), reports: map[string]*shadowReport{}, routes: map[string]Route{}}
}

// built records the settings a route was built with, and logs them when they are new
// or changed (at start, and when a reload changes a percentage).
func (s *cutoverState) built(spec Route, log *slog.Logger) {
	s.mu.Lock()
	prev, seen := s.routes[spec.Prefix]
	s.routes[spec.Prefix] = spec
	s.mu.Unlock()
	if seen && prev == spec {
		return
	}
	attrs := []any{"candidate", spec.Candidate, "target", spec.Target, "rollout_percent", spec.Rollout,
		"shadow", spec.Shadow, "fallback", spec.Fallback}
	if seen && prev.Candidate == spec.Candidate {
		attrs = append(attrs, "previous_rollout_percent", prev.Rollout)
	}
	log.Info("route with a Go candidate", attrs...)
}

// inUse brings qxbridge_rollout_percent in line with the routing table now in use
// (at Open, and after each Reload that applied a new table): each route with a
// candidate shows its percentage, and a route the reload removed, or whose candidate
// it removed, loses its label, which would otherwise keep claiming that Go serves a
// share of it. Settings built for a table that was then refused are forgotten too.
func (s *cutoverState) inUse(t *table) {
	live := map[string]Route{}
	for _, r := range t.routes {
		if r.Candidate != "" {
			live[r.Prefix] = r.Route
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for prefix := range s.routes {
		if _, ok := live[prefix]; !ok {
			s.metrics.percent.DeleteLabelValues(prefix)
			delete(s.routes, prefix)
		}
	}
	for prefix, spec := range live {
		s.routes[prefix] = spec
		s.metrics.percent.WithLabelValues(prefix).Set(spec.Rollout)
	}
}

// slotsFor returns the shadow slots for a bound, made anew when the bound changed.
func (s *cutoverState) slotsFor(n int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots == nil || cap(s.slots) != n {
		s.slots = make(chan struct{}, n)
	}
	return s.slots
}

// report returns a route's shadow report, keeping at most samples differences.
func (s *cutoverState) report(route string, samples int) *shadowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := s.reports[route]
	if rep == nil {
		rep = &shadowReport{view: shadowView{Route: route, Counts: map[string]uint64{}}}
		s.reports[route] = rep
	}
	rep.setLimit(samples)
	return rep
}

// cutover is the handler of a route with a Go candidate: it picks the side of each
// request, shadows and falls back as the route says.
type cutover struct {
	spec     Route
	python   http.Handler // the route's own handler (the shield and the pool)
	candid   http.Handler // the candidate behind the session manager
	shadowed http.Handler // the candidate behind a read-only manager over a snapshot
	load     func(ctx context.Context, id string) ([]byte, error)
	cookie   quixote.Cookie
	cfg      Cutover
	safe     map[string]bool
	replace  []*regexp.Regexp
	points   uint64
	slots    chan struct{}
	report   *shadowReport
	m        *cutoverMetrics
	log      *slog.Logger
	timeout  time.Duration
}

// newCutover makes the handler of a route with a candidate. python is the route's
// handler; h is the candidate as registered.
func (g *Gateway) newCutover(cfg Config, spec Route, python, h http.Handler) http.Handler {
	c := cfg.Cutover
	c.SafeMethods = orDefaultList(c.SafeMethods, []string{http.MethodGet, http.MethodHead})
	c.CompareHeaders = orDefaultList(c.CompareHeaders, []string{"Content-Type", "Location"})
	c.MaxShadows = orDefaultInt(c.MaxShadows, DefaultMaxShadows)
	c.Samples = orDefaultInt(c.Samples, DefaultShadowSamples)
	c.MaxBody = orDefaultInt(c.MaxBody, DefaultCutoverMaxBody)
	m := g.manager
	// The manager's settings, so that the shadow run sees the session as the
	// candidate would (its class, its lifetimes), over the snapshot, read-only.
	ro := &quixote.Manager{Store: snapshotStore{}, Cookie: m.Cookie, NewClass: m.NewClass, Classes: m.Classes,
		ScriptName: m.ScriptName, RemoteAddr: m.RemoteAddr, ReadOnly: true, Logger: m.Logger,
		IdleTimeout: m.IdleTimeout, MaxLifetime: m.MaxLifetime, BufferLimit: m.BufferLimit}
	x := &cutover{
		spec:     spec,
		python:   python,
		candid:   mountGo(spec, g.manager.Handler(h)),
		shadowed: mountGo(spec, ro.Handler(h)),
		load:     g.manager.Store.Load,
		cookie:   cfg.Cookie,
		cfg:      c,
		safe:     map[string]bool{},
		points:   basisPoints(spec.Rollout),
		slots:    g.cutover.slotsFor(c.MaxShadows),
		report:   g.cutover.report(spec.Prefix, c.Samples),
		m:        g.cutover.metrics,
		log:      g.log().With("route", spec.Prefix),
		timeout:  cfg.BackendTimeout,
	}
	for _, m := range c.SafeMethods {
		x.safe[strings.ToUpper(m)] = true
	}
	g.cutover.built(spec, x.log)
	for _, r := range c.Replace {
		x.replace = append(x.replace, regexp.MustCompile(r.Pattern)) // checked by validate
	}
	if x.timeout <= 0 {
		x.timeout = DefaultBackendTimeout
	}
	return x
}

func orDefaultList(v, def []string) []string {
	if v == nil {
		return def
	}
	return v
}

func orDefaultInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// side decides which side serves r and why, and returns the rollout cookie to set,
// if any.
func (c *cutover) side(r *http.Request) (side, reason, setCookie string) {
	pick := func(v string) string {
		v = strings.TrimSpace(v)
		if tok := c.cfg.OverrideToken; tok != "" {
			var got string
			var ok bool
			if v, got, ok = strings.Cut(v, ":"); !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				return ""
			}
		}
		switch strings.ToLower(v) {
		case sideGo:
			return sideGo
		case sidePython:
			return sidePython
		}
		return ""
	}
	if h := c.cfg.OverrideHeader; h != "" {
		if s := pick(r.Header.Get(h)); s != "" {
			return s, reasonOverride, ""
		}
	}
	if n := c.cfg.OverrideCookie; n != "" {
		if ck, err := r.Cookie(n); err == nil {
			if s := pick(ck.Value); s != "" {
				return s, reasonOverride, ""
			}
		}
	}
	switch {
	case c.points == 0:
		return sidePython, reasonRollout, ""
	case c.points >= 10000:
		return sideGo, reasonRollout, ""
	}
	in := func(key string) string {
		if bucket(key) < c.points {
			return sideGo
		}
		return sidePython
	}
	if n := c.cfg.RolloutCookie; n != "" {
		if ck, err := r.Cookie(n); err == nil && rolloutValue.MatchString(ck.Value) {
			return in(ck.Value), reasonRollout, ""
		}
	}
	if id := c.cookie.SessionID(r); id != "" {
		return in(id), reasonRollout, ""
	}
	if c.cfg.RolloutCookie == "" {
		return sidePython, reasonNew, ""
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: see crypto/rand.Read
	v := base64.RawURLEncoding.EncodeToString(b)
	ck := &http.Cookie{Name: c.cfg.RolloutCookie, Value: v, Path: "/", MaxAge: 400 * 24 * 3600,
		HttpOnly: true, Secure: c.cookie.Secure, SameSite: http.SameSiteLaxMode}
	return in(v), reasonNew, ck.String()
}

func (c *cutover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	side, reason, setCookie := c.side(r)
	if setCookie != "" {
		w.Header().Add("Set-Cookie", setCookie)
	}
	if side == sideGo {
		c.serveGo(w, r, reason)
		return
	}
	c.served(w, sidePython, reason, true)
	if c.spec.Shadow && c.safe[r.Method] {
		c.serveShadowed(w, r)
		return
	}
	c.python.ServeHTTP(w, r)
}

// served notes the side in the request log, and when final in the metrics.
func (c *cutover) served(w http.ResponseWriter, side, reason string, final bool) {
	if final {
		c.m.served.WithLabelValues(c.spec.Prefix, side, reason).Inc()
	}
	if rec := findRecorder(w); rec != nil {
		rec.side, rec.reason = side, reason
	}
}

// serveGo serves a request with the candidate. A safe request on a route with
// Fallback is held back until the candidate's answer is known: a panic or a 5xx
// gives Python's answer instead. Otherwise a panic before the response started is
// answered 500.
func (c *cutover) serveGo(w http.ResponseWriter, r *http.Request, reason string) {
	held := c.spec.Fallback && c.safe[r.Method]
	c.served(w, sideGo, reason, !held)
	if !held {
		sw := &startWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				c.panicked(r, p, "answered 500")
				if sw.started {
					panic(http.ErrAbortHandler) // too late for a status: cut the response
				}
				http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			}
		}()
		c.candid.ServeHTTP(sw, r)
		return
	}
	body, whole, err := readBody(r, c.cfg.MaxBody)
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	if !whole {
		// Too big to replay, or a body on the HTTP listener (see readBody): the
		// candidate answers, without a fallback.
		c.served(w, sideGo, reason, true)
		r.Body = body
		c.candid.ServeHTTP(w, r)
		return
	}
	hold := &holdWriter{w: w, max: c.cfg.MaxBody, header: http.Header{}}
	cause := func() (cause string) {
		defer func() {
			if p := recover(); p != nil {
				if hold.sent {
					c.panicked(r, p, "response cut off")
					c.served(w, sideGo, reason, true)
					panic(http.ErrAbortHandler)
				}
				c.panicked(r, p, "Python answers")
				cause = "panic"
			}
		}()
		r.Body = body.replay()
		c.candid.ServeHTTP(hold, r)
		if hold.status >= 500 && !hold.sent {
			return "status"
		}
		return ""
	}()
	if cause == "" {
		c.served(w, sideGo, reason, true)
		_ = hold.send() // a client gone: nothing more to do
		return
	}
	c.m.fallbacks.WithLabelValues(c.spec.Prefix, cause).Inc()
	if cause == "status" {
		c.log.Warn("Go candidate failed; Python answers", "method", r.Method, "path", r.URL.Path, "status", hold.status)
	}
	c.served(w, sidePython, reasonFallback, true)
	r.Body = body.replay()
	c.python.ServeHTTP(w, r)
}

func (c *cutover) panicked(r *http.Request, p any, what string) {
	c.m.panics.WithLabelValues(c.spec.Prefix).Inc()
	c.log.Error("Go candidate panicked; "+what, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
}

// startWriter notes whether the response has started.
type startWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startWriter) WriteHeader(code int) {
	if code >= 200 {
		w.started = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *startWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

func (w *startWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// holdWriter holds a response back until send: its headers, status and up to max
// bytes of body. A bigger body, or a flush, sends what it holds and passes the rest
// through.
type holdWriter struct {
	w      http.ResponseWriter
	max    int
	header http.Header
	status int
	body   bytes.Buffer
	sent   bool
}

func (h *holdWriter) Header() http.Header {
	if h.sent {
		return h.w.Header()
	}
	return h.header
}

func (h *holdWriter) WriteHeader(code int) {
	if h.sent {
		h.w.WriteHeader(code)
		return
	}
	if h.status == 0 && code >= 200 {
		h.status = code
	}
}

func (h *holdWriter) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	if !h.sent && h.body.Len()+len(b) <= h.max {
		return h.body.Write(b)
	}
	if err := h.send(); err != nil {
		return 0, err
	}
	return h.w.Write(b)
}

// send writes what is held to the client; from then on writes pass through.
func (h *holdWriter) send() error {
	if h.sent {
		return nil
	}
	h.sent = true
	dst := h.w.Header()
	for k, vv := range h.header {
		dst[k] = append(dst[k], vv...)
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.w.WriteHeader(h.status)
	if h.body.Len() == 0 {
		return nil
	}
	_, err := h.w.Write(h.body.Bytes())
	return err
}

// FlushError sends what is held and flushes: a page that flushes wants its bytes out.
func (h *holdWriter) FlushError() error {
	if err := h.send(); err != nil {
		return err
	}
	return http.NewResponseController(h.w).Flush()
}

func (h *holdWriter) Flush() { _ = h.FlushError() }

// heldBody is a request body read into memory, to be given to two handlers.
type heldBody struct {
	data []byte
	rest io.ReadCloser // what was not read, when the body was bigger than the bound
}

func (b *heldBody) replay() io.ReadCloser {
	if len(b.data) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b.data))
}

func (b *heldBody) Read(p []byte) (int, error) { // the whole body, for one reader
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	if b.rest == nil {
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func (b *heldBody) Close() error {
	if b.rest != nil {
		return b.rest.Close()
	}
	return nil
}

// readBody reads up to max bytes of r's body. whole reports that it was all of it;
// otherwise the returned body reads the whole body, for one handler.
//
// Only a body whose arrival is bounded is read here: one of a request the SCGI
// Server received (its BodyLimits apply to every read). A body on the HTTP listener
// is not read at all (whole is false): the request is then served once, by a
// handler that applies the limits (the proxy), so a client sending a body slowly
// cannot hold a shadow slot or a goroutine here for ever.
func readBody(r *http.Request, max int) (b *heldBody, whole bool, err error) {
	b = &heldBody{}
	if r.Body == nil || r.Body == http.NoBody {
		return b, true, nil
	}
	if scgi.RequestEnv(r) == nil {
		b.rest = r.Body
		return b, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return nil, false, err
	}
	b.data = data
	if len(data) <= max {
		r.Body.Close()
		return b, true, nil
	}
	b.rest = r.Body
	return b, false, nil
}

// parsePercent parses a rollout percentage.
func parsePercent(v string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "%"), 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fmt.Errorf("rollout %q: want a percentage from 0 to 100", v)
	}
	return p, nil
}

// withCandidate puts the cutover between a Python route and its Go candidate.
func (g *Gateway) withCandidate(cfg Config, spec Route, isPool bool, python http.Handler) (http.Handler, error) {
	if !isPool {
		return nil, fmt.Errorf("%v: a candidate replaces a Python route; %q is a Go handler", spec, spec.Target)
	}
	h, ok := g.handlers[spec.Candidate]
	if !ok {
		return nil, g.noHandler(Route{Prefix: spec.Prefix, Target: spec.Candidate}, g.handlerNamesLocked())
	}
	return g.newCutover(cfg, spec, python, h), nil
}

// routeOpt is a per-route flag (-candidate, -rollout, -shadow, -fallback), applied
// to the route of its prefix once the routes are known.
type routeOpt struct {
	flag, prefix string
	apply        func(*Route)
}

func applyRouteOpts(routes []Route, opts []routeOpt) error {
	for _, o := range opts {
		i := slices.IndexFunc(routes, func(r Route) bool { return r.match() == strings.TrimSuffix(o.prefix, "/") })
		if i < 0 {
			return fmt.Errorf("-%s %s: no route has that prefix", o.flag, o.prefix)
		}
		o.apply(&routes[i])
	}
	return nil
}

// cutoverFlags defines the flags of Config.Cutover and of the routes' candidates.
func cutoverFlags(fs *flag.FlagSet, cfg *Config, st *flagState) {
	opt := func(name string, parse func(prefix, value string) (func(*Route), error)) funcValue {
		return funcValue{set: func(v string) error {
			prefix, value, _ := strings.Cut(v, "=")
			if !strings.HasPrefix(prefix, "/") {
				return fmt.Errorf("%q: want a route's PREFIX first", v)
			}
			apply, err := parse(prefix, value)
			if err != nil {
				return err
			}
			st.routeOpts = append(st.routeOpts, routeOpt{name, prefix, apply})
			return nil
		}}
	}
	fs.Var(opt("candidate", func(_, v string) (func(*Route), error) {
		if !handlerName.MatchString(v) {
			return nil, fmt.Errorf("-candidate: want PREFIX=HANDLER, the name of a Go handler")
		}
		return func(r *Route) { r.Candidate = v }, nil
	}), "candidate", "`PREFIX=HANDLER`: the Go handler written to replace the Python route of PREFIX (repeatable); -rollout, -shadow and -fallback move the route to it")
	fs.Var(opt("rollout", func(_, v string) (func(*Route), error) {
		p, err := parsePercent(v)
		return func(r *Route) { r.Rollout = p }, err
	}), "rollout", "`PREFIX=PERCENT`: serve this percentage of the route's sessions with its candidate, sticky by session id (a SIGHUP reloads the configuration file's; a flag stays as given)")
	boolOpt := func(name string, set func(*Route)) funcValue {
		return opt(name, func(_, v string) (func(*Route), error) {
			if v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("-%s: want PREFIX or PREFIX=false", name)
				}
				if !b {
					return func(*Route) {}, nil
				}
			}
			return set, nil
		})
	}
	fs.Var(boolOpt("shadow", func(r *Route) { r.Shadow = true }), "shadow", "`PREFIX`: run the route's candidate beside Python on safe requests, on a read-only copy of the session, and compare the answers (see the shadow report command)")
	fs.Var(boolOpt("fallback", func(r *Route) { r.Fallback = true }), "fallback", "`PREFIX`: when the route's candidate panics or answers 5xx to a safe request, answer with Python")
	c := &cfg.Cutover
	list := func(dst *[]string) funcValue {
		return funcValue{func() string { return strings.Join(*dst, ",") }, func(v string) error {
			*dst = nil
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					*dst = append(*dst, f)
				}
			}
			if *dst == nil {
				*dst = []string{}
			}
			return nil
		}}
	}
	fs.Var(list(&c.SafeMethods), "safe-methods", "comma-separated `METHODS` that may run twice: shadowed, or answered by Python after the candidate failed")
	fs.StringVar(&c.RolloutCookie, "rollout-cookie", c.RolloutCookie, "the cookie `NAME` that keeps a visitor without a session on one side of a rollout (\"\": none; they go to Python)")
	fs.StringVar(&c.OverrideHeader, "override-header", c.OverrideHeader, "request header `NAME` that picks a side (go or python) on routes with a candidate, e.g. "+DefaultOverrideHeader+" (default none)")
	fs.StringVar(&c.OverrideCookie, "override-cookie", c.OverrideCookie, "cookie `NAME` that picks a side (go or python) on routes with a candidate, e.g. "+DefaultOverrideCookie+" (default none)")
	fs.StringVar(&c.OverrideToken, "override-token", c.OverrideToken, "secret `TOKEN` the override header or cookie must carry, as go:TOKEN (visible to ps: prefer override_token in the configuration file)")
	fs.Var(list(&c.CompareHeaders), "compare-headers", "comma-separated response `HEADERS` a shadow comparison compares besides status and body")
	fs.Var(funcValue{set: func(v string) error {
		pat, with, ok := strings.Cut(v, "=>")
		if !ok {
			return fmt.Errorf("%q: want REGEXP=>REPLACEMENT", v)
		}
		if _, err := regexp.Compile(pat); err != nil {
			return err
		}
		c.Replace = append(c.Replace, Replace{pat, with})
		return nil
	}}, "shadow-replace", "`REGEXP=>REPLACEMENT` applied to both answers before a shadow comparison (repeatable, in order)")
	fs.BoolVar(&c.IgnoreSpace, "shadow-ignore-space", c.IgnoreSpace, "shadow comparisons ignore all white space, as diff -w")
	fs.IntVar(&c.MaxShadows, "max-shadows", c.MaxShadows, "shadow runs in progress at most; more are dropped and counted")
	fs.IntVar(&c.Samples, "shadow-samples", c.Samples, "`N` differences kept per route, for the shadow report command")
	fs.IntVar(&c.MaxBody, "cutover-max-body", c.MaxBody, "`BYTES` of a request or response body held for a shadow comparison or a fallback at most")
}
