package gateway

import (
	"errors"
	"net/http"
)

// errNoModTime is meteredStore.ModTime's answer for a store that does not tell when
// a session was saved: the session is then read to judge it.
var errNoModTime = errors.New("the session store does not tell when a session was saved")

// expireHandler enforces the idle timeout and absolute lifetime (Config.IdleTimeout,
// MaxLifetime) on the Python pages of a pool, which never see the session manager:
// before a request that names a session is forwarded, the manager judges the stored
// session by the rule a Go page applies (quixote.Manager.Expire) and removes it when
// it is past a limit, so that Python loads no session and serves the user as logged
// out, as a Go page would. It runs inside the session's ordering turn (the route's
// handler chain is ordered around it), so no request of the session is in flight
// that could save it back. Without limits the route's handler is returned as it is.
func (g *Gateway) expireHandler(cfg Config, next http.Handler) http.Handler {
	if cfg.IdleTimeout <= 0 && cfg.MaxLifetime <= 0 {
		return next
	}
	m, cookie, metrics := g.manager, cfg.Cookie, g.metrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := cookie.SessionID(r)
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		if _, err := m.Expire(r.Context(), id); err != nil {
			if r.Context().Err() != nil {
				return // the client left; nobody reads an answer
			}
			// The session exists but cannot be judged now: serving it could keep
			// an expired session alive, and the Python page could not load it
			// either. A Go page answers 503 too.
			g.log().Error("cannot check a session's idle timeout and lifetime; answering 503",
				"id", id, "error", err, "remote", r.RemoteAddr, "path", r.URL.Path)
			metrics.sessionFailed(r, "load", http.StatusServiceUnavailable, err)
			http.Error(w, "session temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
