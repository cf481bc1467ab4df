package quixote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/qxbridge/qxbridge/ratelog"
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
	// IdleTimeout, when positive, ends sessions not accessed for longer: a session
	// whose _access_time (refreshed by every request, Python's or Go's, at most once
	// a second) is older is treated as absent when a Go page loads it, and its file
	// is removed. 0 disables it, as in session3. Pages the Manager does not serve
	// (Python's, behind a gateway) are covered by calling Expire before them.
	IdleTimeout time.Duration
	// MaxLifetime, when positive, ends sessions created longer ago (_creation_time)
	// the same way, however active: the absolute lifetime OWASP recommends. 0
	// disables it, as in session3.
	MaxLifetime time.Duration
	// BufferLimit bounds the response the manager holds back until the session is
	// saved, so that a save that fails is answered 503 (the store is unavailable:
	// out of file descriptors, disk full, I/O error, lock timeout) or 500 instead of
	// the page: a lost write is never answered as success. This holds however the
	// page is written: Write, or io.Copy, http.ServeContent and http.ServeFile
	// (ReadFrom, which gives up the sendfile path for a body within the limit). A
	// response longer than that, or one the handler flushes, goes out as it is
	// written, before the save;
	// a save that then fails can only be logged and reported to Failed. A new
	// session is saved once before such a page's headers (which carry its cookie),
	// so that the browser's next request finds it: if that save fails, the manager
	// answers 503 or 500 in place of the page and the handler's further writes
	// return an error. 0 means DefaultBufferLimit; a negative limit holds nothing
	// back.
	BufferLimit int
	// Failed, when not nil, is called for each request whose session could not be
	// loaded, given an id, saved or deleted, with the operation ("load", "id",
	// "save", "delete"), the status the manager answered instead of the page (503
	// or 500), or 0 when the page had gone out already, and the error: for metrics.
	// Every such failure is also logged at error level.
	Failed func(r *http.Request, op string, status int, err error)

	now     func() time.Time // for tests; nil means time.Now
	locks   keyedMutex
	created creationTimes // for Expire
}

// DefaultBufferLimit is the default Manager.BufferLimit: most pages fit.
const DefaultBufferLimit = 256 << 10

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
	renewed string // the id the session had before RenewID gave it a new one
	renewal string // the Set-Cookie value that renewal added
	ended   bool   // the handler returned
	faultOp string // the operation that failed ("id"), with fault
	fault   error
	// early is the error of a new session's save before its page went out (see
	// saveNew): the manager answered in place of the page.
	early error
}

// emptyRemover is a store that can remove the zero-length file a crashed or
// out-of-space Python writer left (store.Directory.RemoveEmpty).
type emptyRemover interface {
	RemoveEmpty(ctx context.Context, id string) (bool, error)
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	x := &exchange{m: m, r: r, ctx: context.WithoutCancel(r.Context())}
	id, removed := m.Cookie.sessionID(r)
	if len(removed) > 0 {
		m.logger().Warn("quixote: ignoring session cookies with an invalid id", ratelog.Key, "cookie",
			"cookie", m.Cookie.name(), "values", quoteValues(removed), "remote", r.RemoteAddr)
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

	limit := m.BufferLimit
	if limit == 0 {
		limit = DefaultBufferLimit
	}
	rw := &responseWriter{ResponseWriter: w, x: x, limit: limit}
	done := false
	defer func() {
		if !done {
			// A panic is on its way up to net/http: nothing is saved, as
			// session3 saves nothing for a request that raised.
			m.logger().Debug("quixote: handler panicked; session not saved", "id", s.ID())
		}
	}()
	next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), contextKey{}, s)))
	done, x.ended = true, true
	if x.early != nil {
		return // answered, logged and reported already
	}
	if rw.status == 0 {
		// Nothing written: the page is an empty 200.
		rw.status = http.StatusOK
		x.beforeHeaders(rw.Header(), rw.status)
	}
	op, err := x.finish(rw.status)
	if err != nil {
		x.failed(w, op, err, rw.sent)
		if !rw.sent {
			return // answered instead of the page
		}
	}
	_ = rw.commit()
}

// failed reports a session that could not be given an id, saved or deleted at the
// end of a request, and answers 503 (the store is unavailable for now) or 500 in
// place of the page when the page has not gone out yet.
func (x *exchange) failed(w http.ResponseWriter, op string, err error, sent bool) {
	m := x.m
	status := 0
	if !sent {
		status = unavailableStatus(err)
	}
	msg := "quixote: cannot " + map[string]string{"id": "make a session id", "save": "save the session",
		"delete": "delete the session"}[op]
	if sent {
		msg += "; the page had already been sent (longer than BufferLimit, or flushed)"
	} else {
		msg += "; answering " + strconv.Itoa(status) + " instead of the page"
		h := w.Header()
		for k := range h {
			delete(h, k) // the page's headers, its Set-Cookie included
		}
		http.Error(w, http.StatusText(status), status)
	}
	m.logger().Error(msg, "id", x.session.ID(), "error", err, "remote", x.r.RemoteAddr, "path", x.r.URL.Path)
	if m.Failed != nil {
		m.Failed(x.r, op, status, err)
	}
}

// unavailableStatus is the status answered for a session store error: 503 when the
// store is unavailable for now (store.ErrUnavailable: out of file descriptors, disk
// full, I/O error; store.ErrLockTimeout; a deadline), 500 otherwise.
func unavailableStatus(err error) int {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrLockTimeout) ||
		errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// load returns the session named by id, or a new one. It returns false when it
// already answered the request: the session could not be read for a reason other
// than its absence or its contents (503 or 500; a client that left gets nothing).
//
// A missing file, or one that is not a valid session of this id (empty, incomplete,
// too large, not a regular file, not a session) gives a new session, as a missing
// one does in session3; the file is left as it is, but for a zero-length one, which
// a Python writer that crashed or met a full disk leaves behind and on which
// session3 loops forever: it is removed (store.Directory.RemoveEmpty).
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
	case errors.Is(err, store.ErrEmpty):
		removed := false
		if er, ok := m.Store.(emptyRemover); ok {
			var rerr error
			if removed, rerr = er.RemoveEmpty(x.ctx, id); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
				m.logger().Error("quixote: cannot remove an empty session file", "id", id, "error", rerr)
			}
		}
		m.logger().Warn("quixote: session file is empty (a writer crashed or the disk was full); serving a new session",
			"id", id, "removed", removed)
		return fresh(), true
	case errors.Is(err, store.ErrTruncated), errors.Is(err, store.ErrTooLarge), errors.Is(err, store.ErrNotRegular),
		errors.Is(err, store.ErrInvalidID):
		m.logger().Warn("quixote: session file holds no valid session; serving a new session and leaving the file as it is",
			"id", id, "error", err)
		return fresh(), true
	case x.r.Context().Err() != nil:
		m.logger().Debug("quixote: the client left while its session was loading", "id", id, "error", err)
		return nil, false
	default:
		// Out of file descriptors, an I/O error, a lock held too long, permissions:
		// the session exists but cannot be read now. An anonymous page would log
		// the user out, and its save would start a second session.
		status := http.StatusServiceUnavailable
		if errors.Is(err, fs.ErrPermission) {
			status = http.StatusInternalServerError // the deployment is wrong, not busy
		}
		m.logger().Error("quixote: session file not available; answering "+strconv.Itoa(status),
			"id", id, "error", err, "remote", x.r.RemoteAddr, "path", x.r.URL.Path)
		http.Error(w, "session temporarily unavailable", status)
		if m.Failed != nil {
			m.Failed(x.r, "load", status, err)
		}
		return nil, false
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
	if why := m.over(s); why != "" {
		// Treated as absent, as a swept session would be; the file goes too. A
		// delete that fails is logged: the page is served a new session anyway.
		_ = m.remove(x.ctx, id, why)
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
		old := s.ID()
		if old != "" && !s.renew {
			return
		}
		id, err := m.newID(x.ctx)
		if err != nil {
			x.noID, x.faultOp, x.fault = true, "id", err
			return
		}
		s.setID(id)
		s.renew = false
		x.renewed = old // "" for a new session
		x.renewal = m.Cookie.header(id, script, false)
		h.Add("Set-Cookie", x.renewal)
	default:
		if id := s.ID(); id != "" {
			if has, err := m.Store.Has(x.ctx, id); err == nil && has {
				h.Add("Set-Cookie", m.Cookie.header("", script, true))
				x.revoked = true
			}
		}
	}
}

// dropRenewal undoes RenewID's move to a new id when the page starts going out
// before the handler returns (longer than BufferLimit, or flushed): the new cookie
// would reach the browser before the session is saved under the new id, and the
// browser's next request, under an id no request in flight holds the turn of, could
// find no session or be overwritten by this request's save. The session keeps its
// id, and that is logged.
func (x *exchange) dropRenewal(h http.Header) {
	if x.renewed == "" {
		return
	}
	h["Set-Cookie"] = slices.DeleteFunc(h["Set-Cookie"], func(v string) bool { return v == x.renewal })
	if len(h["Set-Cookie"]) == 0 {
		delete(h, "Set-Cookie")
	}
	x.session.setID(x.renewed)
	x.renewed, x.renewal = "", ""
	x.m.logger().Error("quixote: RenewID was called on a page sent before the session was saved (longer than BufferLimit, or flushed); the session keeps its id",
		"id", x.session.ID(), "path", x.r.URL.Path)
}

// saveNew saves a new session before its cookie goes out on a page sent before the
// handler returned (longer than BufferLimit, or flushed): without it the browser's
// next request, which may come before this one ends, would find no session under
// the cookie's id and start another. finish saves it again if it changes after.
func (x *exchange) saveNew() error {
	s := x.session
	if x.renewal == "" || x.renewed != "" || s.ID() == "" || !s.HasInfo() {
		return nil // not a new session with a cookie on this page
	}
	data, err := s.Encode()
	if err != nil {
		return fmt.Errorf("encoding the session: %w", err)
	}
	if err := x.m.Store.Save(x.ctx, s.ID(), data); err != nil {
		return err
	}
	x.loaded = data
	return nil
}

// errPageReplaced is what a handler's writes return once the manager has answered
// in place of its page.
var errPageReplaced = errors.New("quixote: the page was replaced by an error response: the new session could not be saved")

// finish stores or deletes the session after a request that did not fail. It
// returns the operation that failed and its error, if one did.
func (x *exchange) finish(status int) (op string, err error) {
	m, s := x.m, x.session
	if status >= 500 || m.ReadOnly {
		return "", nil
	}
	if x.fault != nil {
		return x.faultOp, x.fault
	}
	if s.renew && s.ID() != "" && !s.expired && !x.revoked && s.keep() {
		m.logger().Error("quixote: RenewID was called after the response headers were written; the session keeps its id",
			"id", s.ID(), "path", x.r.URL.Path)
	}
	id := s.ID()
	switch {
	case x.revoked || s.expired:
		if id != "" {
			if err := m.Store.Delete(x.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return "delete", err
			}
		}
	case !s.truthy():
	case s.HasInfo():
		if id == "" {
			if !x.noID {
				m.logger().Warn("quixote: a new session got information after the response headers were written; it has no cookie and is not stored")
			}
			return "", nil
		}
		data, err := s.Encode()
		if err != nil {
			return "save", fmt.Errorf("encoding the session: %w", err)
		}
		if bytes.HasPrefix(x.loaded, data) {
			// Unchanged: the file already holds these bytes, or these followed by
			// the rest of a longer session that an in-place save left after the
			// STOP (store.WithInPlace), which no unpickler reads.
			return "", nil
		}
		if err := m.Store.Save(x.ctx, id, data); err != nil {
			return "save", err
		}
		if x.renewed != "" {
			// Saved under its new id first: a failure in between leaves two
			// files, never none. The old id must stop working.
			if err := m.Store.Delete(x.ctx, x.renewed); err != nil && !errors.Is(err, store.ErrNotFound) {
				return "delete", err
			}
		}
	case id != "" && x.loaded != nil:
		// Its information went away after the headers were written: the cookie
		// stays with the client, but the file goes, as session3 would delete it.
		if err := m.Store.Delete(x.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "delete", err
		}
	}
	return "", nil
}

// responseWriter decides the session cookie when the handler writes the response
// headers, the last moment a Set-Cookie can be added, and holds the response back
// (up to limit bytes) until the session is saved.
type responseWriter struct {
	http.ResponseWriter
	x      *exchange
	status int    // the final status once written, else 0
	limit  int    // bytes of body held back at most; <= 0 holds nothing
	buf    []byte // the body held back
	sent   bool   // the status went out (then buf is empty)
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || (code < 200 && code != http.StatusSwitchingProtocols) {
		if w.sent || w.status == 0 {
			w.ResponseWriter.WriteHeader(code) // informational, or superfluous (net/http logs it)
		}
		return
	}
	w.status = code
	w.x.beforeHeaders(w.Header(), code)
	if w.limit <= 0 || code >= 500 || code == http.StatusSwitchingProtocols {
		_ = w.commit() // nothing to save, or nothing to hold
	}
}

// commit sends the status and the body held back, once.
func (w *responseWriter) commit() error {
	if w.sent {
		if w.x.early != nil {
			return errPageReplaced
		}
		return nil
	}
	w.sent = true
	if !w.x.ended {
		w.x.dropRenewal(w.Header())
		if err := w.x.saveNew(); err != nil {
			w.x.early, w.buf = err, nil
			w.x.failed(w.ResponseWriter, "save", err, false)
			return errPageReplaced
		}
	}
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = nil
	return err
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		if len(w.buf)+len(b) <= w.limit {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		if err := w.commit(); err != nil {
			return 0, err
		}
	}
	if w.x.early != nil {
		return 0, errPageReplaced
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom is io.Copy's path (http.ServeContent, http.ServeFile use it too). While
// nothing has been sent it holds the body back as Write does: it reads up to the
// limit into the buffer, and only when more remains sends what it holds and hands
// the rest to the underlying writer's ReadFrom (its sendfile path), before the save.
func (w *responseWriter) ReadFrom(src io.Reader) (n int64, err error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		// One byte past the limit tells a body that fits from one that does not.
		lr := io.LimitReader(src, int64(w.limit-len(w.buf))+1)
		for {
			if len(w.buf) == cap(w.buf) {
				w.buf = append(w.buf, 0)[:len(w.buf)]
			}
			k, rerr := lr.Read(w.buf[len(w.buf):cap(w.buf)])
			w.buf = w.buf[:len(w.buf)+k]
			n += int64(k)
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return n, rerr
			}
		}
		if len(w.buf) <= w.limit {
			return n, nil // all of it is held back
		}
		if err := w.commit(); err != nil {
			return n, err
		}
	}
	if w.x.early != nil {
		return n, errPageReplaced
	}
	var m int64
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		m, err = rf.ReadFrom(src)
	} else {
		m, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	return n + m, err
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// FlushError writes the headers if needed and flushes, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.commit(); err != nil {
		return err
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over, for http.Hijacker and http.ResponseController:
// nothing is held back or written for the response after that.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.sent, w.buf = true, nil
	}
	return c, brw, err
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer (Hijack,
// SetReadDeadline, ...).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
