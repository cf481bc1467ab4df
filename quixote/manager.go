package quixote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/qxbridge/qxbridge/store"
)

// Store is where the manager keeps sessions: the bytes of each session under its
// id. *store.Directory, a session3-compatible DirectorySessionStore, is one.
// Load returns an error wrapping store.ErrNotFound when there is no session of
// that id.
type Store interface {
	Load(ctx context.Context, id string) ([]byte, error)
	Save(ctx context.Context, id string, data []byte) error
	Delete(ctx context.Context, id string) error
	Has(ctx context.Context, id string) (bool, error)
}

// Manager is session3's SessionManager as net/http middleware. Set its fields
// before the first request and do not change them afterwards.
type Manager struct {
	// Store holds the sessions.
	Store Store
	// Cookie configures the session cookie.
	Cookie Cookie
	// NewClass is the class of sessions created in Go. The zero Class means
	// Session3Class.
	NewClass Class
	// Classes describes application session classes found in session files (their
	// Kind, has_info, MAX_FORM_TOKENS). NewClass need not be repeated here.
	Classes []Class
	// ScriptName returns the request's SCRIPT_NAME, from which the cookie path is
	// made when Cookie.Path is "". nil means "" (the cookie path is then "/"). A
	// gateway that receives SCGI requests plugs in its SCGI environment here.
	ScriptName func(*http.Request) string
	// RemoteAddr returns the client address stored in new sessions
	// (REMOTE_ADDR). nil means the host part of r.RemoteAddr.
	RemoteAddr func(*http.Request) string
	// OneAtATime makes the requests this process serves for one session id run
	// one at a time, so that none of them loses another's changes. It cannot
	// order them with requests a Python process serves: between processes the
	// last save wins, as in session3.
	OneAtATime bool
	// ReadOnly serves each request's session without ever storing, deleting or
	// setting a cookie for it, whatever the handler does to it: for running a
	// handler beside the one that answers the request (a shadow comparison), on a
	// store that returns a snapshot of the session.
	ReadOnly bool
	// Logger receives a record for each event an operator should know about: a
	// cookie with an invalid id, a session file that cannot be read or is not a
	// session, a save that failed. nil means slog.Default().
	Logger *slog.Logger

	now   func() time.Time // for tests; nil means time.Now
	locks keyedMutex
}

// NewManager returns a manager over st with session3's defaults: cookie
// QX_session with path "/" (or SCRIPT_NAME + "/"), new sessions of class
// session3.Session.Session.
func NewManager(st Store) *Manager { return &Manager{Store: st} }

type contextKey struct{}

// SessionFrom returns the session of a request served through Manager.Handler,
// or nil for a request that was not.
func SessionFrom(r *http.Request) *Session { return FromContext(r.Context()) }

// FromContext returns the session stored in ctx by Manager.Handler, or nil.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(contextKey{}).(*Session)
	return s
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Manager) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

func (m *Manager) newClass() Class {
	if m.NewClass.Module == "" && m.NewClass.Name == "" {
		return Session3Class
	}
	return m.NewClass
}

// classes returns the described classes, NewClass first.
func (m *Manager) classes() []Class {
	return append([]Class{m.newClass()}, m.Classes...)
}

func (m *Manager) remoteAddr(r *http.Request) string {
	if m.RemoteAddr != nil {
		return m.RemoteAddr(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (m *Manager) scriptName(r *http.Request) string {
	if m.ScriptName != nil {
		return m.ScriptName(r)
	}
	return ""
}

// maxIDTries bounds the search for an unused session id. With 64 random bits a
// second try is already a rarity; running out means the store answers "yes" to
// everything.
const maxIDTries = 16

// newID returns a session id no session file has, as _make_session_id does.
func (m *Manager) newID(ctx context.Context) (string, error) {
	n := m.newClass().Kind.idBytes()
	for range maxIDTries {
		id := randToken(n)
		has, err := m.Store.Has(ctx, id)
		if err != nil {
			return "", err
		}
		if !has {
			return id, nil
		}
	}
	return "", errors.New("quixote: no unused session id found")
}

// Handler returns next wrapped in session3's session handling:
//
//   - the session cookie names the session; its file is loaded and decoded, or a
//     new session (not stored yet) is made when there is no cookie, no file, or a
//     file that is not a valid session;
//   - the access time is refreshed (at most once a second) and the session is
//     available to next through SessionFrom;
//   - when next writes the response headers, the cookie is decided: a new session
//     that has information gets its id and cookie, a session whose information is
//     gone (or that was expired) has its cookie revoked;
//   - when next returns without failing (no panic, status below 500), a session
//     with information is saved (unless its bytes did not change), and an expired
//     one or one whose information is gone is deleted.
//
// See the package documentation for the details and the differences from session3.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	})
}

// exchange is the session state of one request.
type exchange struct {
	m       *Manager
	r       *http.Request
	ctx     context.Context // not cancelled by the client leaving: saves complete
	session *Session
	loaded  []byte // the file's bytes when the session was loaded from it
	decided bool   // the cookie was decided (headers written, or the handler returned)
	revoked bool   // the cookie was revoked: the session is deleted at the end
	noID    bool   // a new session could not get an id
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	x := &exchange{m: m, r: r, ctx: context.WithoutCancel(r.Context())}
	id, _ := m.Cookie.sessionID(r)
	if id != "" {
		if err := store.ValidID(id); err != nil {
			m.logger().Warn("quixote: ignoring a session cookie with an invalid id",
				"cookie", m.Cookie.name(), "error", err, "remote", r.RemoteAddr)
			id = ""
		}
	}
	if id != "" && m.OneAtATime {
		unlock, err := m.locks.lock(r.Context(), id)
		if err != nil {
			if errors.Is(err, errBusy) {
				m.logger().Warn("quixote: refusing a request: too many requests wait for its session",
					"id", id, "remote", r.RemoteAddr)
				http.Error(w, "session busy, try again", http.StatusServiceUnavailable)
			}
			return // otherwise the client left while waiting
		}
		defer unlock()
	}
	s, ok := x.load(w, id)
	if !ok {
		return
	}
	s.Touch(m.clock())
	x.session = s

	rw := &responseWriter{ResponseWriter: w, x: x}
	done := false
	defer func() {
		if !done {
			// A panic is on its way up to net/http: nothing is saved, as
			// session3 saves nothing for a request that raised.
			m.logger().Debug("quixote: handler panicked; session not saved", "id", s.ID())
		}
	}()
	next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), contextKey{}, s)))
	done = true
	if rw.status == 0 {
		// Nothing written: net/http sends 200 when we return, with our headers.
		rw.status = http.StatusOK
		x.beforeHeaders(rw.Header(), rw.status)
	}
	x.finish(rw.status)
}

// load returns the session named by id, or a new one. It returns false when it
// already answered the request (503: the session file is locked by a stuck peer).
func (x *exchange) load(w http.ResponseWriter, id string) (*Session, bool) {
	m := x.m
	fresh := func() *Session { return NewSession(m.newClass(), m.remoteAddr(x.r), m.clock()) }
	if id == "" {
		return fresh(), true
	}
	data, err := m.Store.Load(x.r.Context(), id)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		return fresh(), true // expired or deleted meanwhile: session3 starts anew too
	case errors.Is(err, store.ErrLockTimeout), errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		m.logger().Warn("quixote: session file not available", "id", id, "error", err)
		http.Error(w, "session temporarily unavailable", http.StatusServiceUnavailable)
		return nil, false
	default:
		m.logger().Warn("quixote: cannot read session file; serving a new session and leaving the file as it is",
			"id", id, "error", err)
		return fresh(), true
	}
	s, err := Decode(data, m.classes()...)
	if err != nil {
		m.logger().Warn("quixote: session file holds no valid session; serving a new session and leaving the file as it is",
			"id", id, "error", err)
		return fresh(), true
	}
	if got := s.ID(); got != id {
		m.logger().Warn("quixote: session file holds another session's id; serving a new session and leaving the file as it is",
			"id", id, "file_id", got)
		return fresh(), true
	}
	x.loaded = data
	return s, true
}

// beforeHeaders decides the cookie, once, just before the response headers go out:
// after that a cookie can no longer be set.
func (x *exchange) beforeHeaders(h http.Header, status int) {
	if x.decided {
		return
	}
	x.decided = true
	if status >= 500 || x.m.ReadOnly {
		return // a failed request: session3 sets no cookie and saves nothing
	}
	m, s := x.m, x.session
	script := m.scriptName(x.r)
	switch {
	case s.expired:
		h.Add("Set-Cookie", m.Cookie.header("", script, true))
		x.revoked = true
	case !s.truthy():
		// An empty DictSession: session3 neither maintains nor expires it.
	case s.HasInfo():
		if s.ID() != "" {
			return
		}
		id, err := m.newID(x.ctx)
		if err != nil {
			m.logger().Error("quixote: cannot make a session id; the new session is not stored", "error", err)
			x.noID = true
			return
		}
		s.setID(id)
		h.Add("Set-Cookie", m.Cookie.header(id, script, false))
	default:
		if id := s.ID(); id != "" {
			if has, err := m.Store.Has(x.ctx, id); err == nil && has {
				h.Add("Set-Cookie", m.Cookie.header("", script, true))
				x.revoked = true
			}
		}
	}
}

// finish stores or deletes the session after a request that did not fail.
func (x *exchange) finish(status int) {
	m, s := x.m, x.session
	if status >= 500 || m.ReadOnly {
		return
	}
	id := s.ID()
	switch {
	case x.revoked || s.expired:
		if id != "" {
			if err := m.Store.Delete(x.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				m.logger().Error("quixote: cannot delete an expired session", "id", id, "error", err)
			}
		}
	case !s.truthy():
	case s.HasInfo():
		if id == "" {
			if !x.noID {
				m.logger().Warn("quixote: a new session got information after the response headers were written; it has no cookie and is not stored")
			}
			return
		}
		data, err := s.Encode()
		if err != nil {
			m.logger().Error("quixote: cannot encode the session; not saved", "id", id, "error", err)
			return
		}
		if bytes.Equal(data, x.loaded) {
			return // unchanged: the file already holds these bytes
		}
		if err := m.Store.Save(x.ctx, id, data); err != nil {
			m.logger().Error("quixote: cannot save the session", "id", id, "error", err)
		}
	case id != "" && x.loaded != nil:
		// Its information went away after the headers were written: the cookie
		// stays with the client, but the file goes, as session3 would delete it.
		if err := m.Store.Delete(x.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.logger().Error("quixote: cannot delete an expired session", "id", id, "error", err)
		}
	}
}

// responseWriter decides the session cookie when the handler writes the response
// headers, the last moment a Set-Cookie can be added.
type responseWriter struct {
	http.ResponseWriter
	x      *exchange
	status int // the final status once written, else 0
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.x.beforeHeaders(w.Header(), code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's sendfile path for io.Copy.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// FlushError writes the headers if needed and flushes, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer (Hijack,
// SetReadDeadline, ...).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
