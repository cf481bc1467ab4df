package quixote

import (
	"net/http"
	"strings"

	"github.com/qxbridge/qxbridge/store"
)

// DefaultCookieName is Quixote's SESSION_COOKIE_NAME default.
const DefaultCookieName = "QX_session"

// Cookie holds the session cookie's settings: Quixote's SESSION_COOKIE_NAME,
// SESSION_COOKIE_PATH, SESSION_COOKIE_DOMAIN, SESSION_COOKIE_SECURE and
// SESSION_COOKIE_HTTPONLY, plus SameSite, which Quixote does not write.
type Cookie struct {
	Name     string // "" means DefaultCookieName
	Path     string // "" means the request's SCRIPT_NAME with a trailing "/"
	Domain   string // "" writes no domain attribute
	Secure   bool
	HttpOnly bool
	// SameSite adds a samesite attribute unless it is 0 or http.SameSiteDefaultMode.
	SameSite http.SameSite
}

func (c *Cookie) name() string {
	if c.Name == "" {
		return DefaultCookieName
	}
	return c.Name
}

// path returns the cookie path as Quixote picks it: the configured one, or else
// SCRIPT_NAME with a trailing slash.
func (c *Cookie) path(scriptName string) string {
	if c.Path != "" {
		return c.Path
	}
	if !strings.HasSuffix(scriptName, "/") {
		scriptName += "/"
	}
	return scriptName
}

// header returns a Set-Cookie value as Quixote's HTTPResponse writes it: the value
// in double quotes (a '"' escaped with a backslash), then domain, path, max-age,
// secure and httponly in that order with lower-case names, then samesite.
// revoke writes the empty value with max-age=0, as revoke_session_cookie does.
func (c *Cookie) header(value, scriptName string, revoke bool) string {
	var b strings.Builder
	b.WriteString(c.name())
	b.WriteString(`="`)
	b.WriteString(strings.ReplaceAll(value, `"`, `\"`))
	b.WriteByte('"')
	if c.Domain != "" {
		b.WriteString("; domain=")
		b.WriteString(c.Domain)
	}
	b.WriteString("; path=")
	b.WriteString(c.path(scriptName))
	if revoke {
		b.WriteString("; max-age=0")
	}
	if c.Secure {
		b.WriteString("; secure")
	}
	if c.HttpOnly {
		b.WriteString("; httponly")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; samesite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; samesite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; samesite=None")
	}
	return b.String()
}

// SessionID returns the id of the session the request belongs to, on either kind of
// route: the session a Go route (the Manager) serves it with and the one a Python
// worker behind Shield loads. It is the value of the session cookie Quixote's
// parse_cookies reads from the Cookie header as the shield forwards it
// (ShieldCookieHeader): occurrences the shield cuts out (values that are not a valid
// id, store.ValidID) do not count, so with "QX_session=VALID; QX_session=../x" it is
// VALID, as Python reads it; of the rest the last one counts. It is "" when the
// request names no session (no cookie, session3's "" or "*del*", or a header the
// shield drops whole). Code that works per session around both kinds of routes
// (ordering, affinity) keys on it.
func (c *Cookie) SessionID(r *http.Request) string {
	id, _ := c.sessionID(r)
	return id
}

// sessionID returns SessionID's id and the session cookie values the shield removes
// from the request's header (for a warning).
func (c *Cookie) sessionID(r *http.Request) (id string, removed []string) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return "", nil
	}
	v, removed := shieldedSessionValue(strings.Join(lines, "; "), c.name())
	if v == "*del*" || store.ValidID(v) != nil {
		v = ""
	}
	return v, removed
}
