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

// SessionID returns the session id the request's session cookie names, read with
// Quixote's cookie grammar as the Manager reads it, or "" when the request names no
// session or a value that is not a valid id (store.ValidID): the session a Go route
// serves the request with, and, behind Shield, the one a Python worker loads. Code
// that works per session around both kinds of routes keys on it.
func (c *Cookie) SessionID(r *http.Request) string {
	id, _ := c.sessionID(r)
	if id == "" || store.ValidID(id) != nil {
		return ""
	}
	return id
}

// sessionID returns the session id the request's cookie names, and whether the
// request had the cookie at all. "" and "*del*" mean no session, as in session3.
// The header is read with Quixote's own cookie grammar (ParseCookies), so that Go and
// Python pick the same session for the same header: when the cookie is sent twice the
// last one counts, commas separate cookies, and the double quotes and backslash
// escapes of a quoted value are removed.
func (c *Cookie) sessionID(r *http.Request) (id string, present bool) {
	v, ok := cookieValue(r, c.name())
	if !ok {
		return "", false
	}
	if v == "*del*" {
		v = ""
	}
	return v, true
}
