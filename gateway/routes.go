package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/qxbridge/qxbridge/scgi"
)

// lookup returns the route for a request path, or nil.
func (t *table) lookup(p string) *route {
	for _, r := range t.routes {
		if under(p, r.match()) {
			return r
		}
	}
	return nil
}

// under reports whether path p lies at or below prefix (given without a trailing
// slash; "" is the root).
func under(p, prefix string) bool {
	return prefix == "" || p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/')
}

// scriptNameKey carries the SCRIPT_NAME a Go route's application sees.
type scriptNameKey struct{}

// ScriptName returns the SCRIPT_NAME of the application a Go route's handler is part
// of, for building links and redirects: on a route with Mount (-mount PREFIX=TARGET)
// the prefix, without its trailing slash, while the handler's r.URL.Path is the rest
// of the path (PATH_INFO); otherwise the mount point the front server declared
// (scgi.FrontScriptName), or "". Quixote's request.get_path() is ScriptName(r) +
// r.URL.Path. The session cookie's default path is ScriptName(r) + "/", as Quixote
// writes it. For a request no gateway routed it returns "".
func ScriptName(r *http.Request) string {
	s, _ := r.Context().Value(scriptNameKey{}).(string)
	return s
}

// ServeHTTP routes a request: to the route with the longest prefix matching its path,
// 404 when none does. A prefix matches the path itself and every path below it:
// "/app/" and "/app" both match "/app", "/app/" and "/app/x", but not "/apple"; "/"
// matches everything. A path with dot segments or repeated slashes is redirected to
// its clean form first. Each request gets its id (see RequestID), is logged (one
// record: method, path, route, status, duration, backend, bytes, request_id) and
// counted in the metrics, because the router alone knows which route served it. Call
// Open first.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.table.Load()
	if t == nil {
		http.Error(w, "gateway not open", http.StatusServiceUnavailable)
		return
	}
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	id := assignRequestID(rec, r)
	rt0 := t.lookup(r.URL.Path)
	routeName, backend := "none", ""
	if rt0 != nil {
		routeName, backend = rt0.Prefix, rt0.backend
	}
	defer func() {
		// Logged and counted even when the handler panics (the proxy aborts a response
		// that a backend cut off with http.ErrAbortHandler): the panic goes on up.
		p := recover()
		status := rec.status
		if status == 0 {
			if p != nil {
				status = http.StatusInternalServerError
			} else {
				status = http.StatusOK
			}
		}
		d := time.Since(start)
		g.metrics.observeRequest(routeName, status, d)
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", routeName),
			slog.Int("status", status),
			slog.Duration("duration", d),
			slog.String("backend", backend),
			slog.Int64("bytes", rec.bytes),
			slog.String("remote", r.RemoteAddr),
			slog.String("request_id", id),
		}
		if rec.side != "" {
			attrs = append(attrs, slog.String("side", rec.side), slog.String("reason", rec.reason))
		}
		if rec.ordered {
			attrs = append(attrs, slog.Duration("wait", rec.wait))
		}
		if p != nil {
			attrs = append(attrs, slog.Bool("aborted", true))
		}
		g.log().LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
		if p != nil {
			panic(p)
		}
	}()

	if clean := cleanPath(r.URL.Path); clean != r.URL.Path {
		// As http.ServeMux does: a path with dot segments or repeated slashes is
		// redirected to its clean form, so that routing, the Go pages and the Python
		// application all see one spelling of each path.
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		http.Redirect(rec, r, u.RequestURI(), http.StatusMovedPermanently)
		return
	}
	if rt0 == nil {
		http.NotFound(rec, r)
		return
	}
	rt0.handler.ServeHTTP(rec, r)
}

// cleanPath is path.Clean keeping a trailing slash; "" stays "" (an OPTIONS * or a
// request without a path is left to the route).
func cleanPath(p string) string {
	if p == "" {
		return p
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// recorder notes the status and size of a response for the log and the metrics. It
// keeps http.ResponseController working (Flush, full duplex, deadlines) through Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// side and reason: which side of a route with a Go candidate served, and why.
	side, reason string
	// Per-session ordering: whether the request waited for its session's turn, and
	// how long (logged as wait).
	ordered bool
	wait    time.Duration
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// FlushError flushes and reports a failure (a client gone), for http.ResponseController.
func (w *recorder) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *recorder) Flush() { _ = w.FlushError() }

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// mountGo serves a Go handler under a route. For a mount it strips the prefix, as
// a Quixote application mounted there sees only PATH_INFO, and SCRIPT_NAME (and with
// it the default cookie path) is the prefix; a request for the prefix itself is
// redirected to the prefix with a slash, as Quixote does for a directory. Otherwise
// the handler sees the whole path, and SCRIPT_NAME is the mount point an SCGI front
// end declared (scgi.FrontScriptName: its SCRIPT_NAME when the path lies under it and
// it is not Apache's whole-path form), else "".
func mountGo(spec Route, h http.Handler) http.Handler {
	prefix := spec.match()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		script := ""
		r2 := r
		if spec.Mount {
			if r.URL.Path == prefix {
				u := *r.URL
				u.Path, u.RawPath = prefix+"/", ""
				http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
				return
			}
			script = prefix
			r2 = r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
			r2.URL.RawPath = ""
		} else if s := scgi.FrontScriptName(r); s != "" {
			script = s // the front end's mount point, by the proxy's rule (not Apache's whole path)
		}
		r2 = r2.WithContext(context.WithValue(r2.Context(), scriptNameKey{}, script))
		h.ServeHTTP(w, r2)
	})
}
