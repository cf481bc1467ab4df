package quixote

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qxbridge/qxbridge/store"
)

// Quixote's cookie grammar, and shielding the Python side from hostile session
// cookies.
//
// session3 joins the session cookie's value onto its directory path unchecked: a value
// such as "/etc/hostname" or "../../x" makes a Quixote worker unpickle, rewrite or
// delete files outside the session directory, and "../../dev/null" hangs a worker for
// ever in session3's zero-length retry loop. Every request for Python passes through
// the gateway, so the gateway removes such cookies before forwarding.
//
// The decision has to be made on what Python will see, not on what Go's cookie parser
// sees: Quixote's parse_cookies is a regular expression that also splits on commas,
// unquotes backslash escapes, treats Unicode white space as white space and lets the
// last of repeated names win, so a header can read as harmless to net/http and as
// QX_session=../x to Quixote. quixoteCookies below follows that expression step by
// step (including the order in which its backtracking picks the end of a quoted
// value), once over the header decoded as Latin-1, as python-scgi decodes the SCGI
// header, and once decoded as UTF-8, so a server that decodes differently is covered
// too. Every occurrence of the session cookie whose value would be neither a valid id
// (store.ValidID) nor one of session3's "no session" values ("" and "*del*") is cut
// out of the header text; the rest of the header, other cookies included, is
// forwarded byte for byte. The result is parsed again both ways, and should cutting
// ever fail to leave a clean header, the Cookie header is dropped whole.
//
// The Manager reads the session id with the same grammar (over the Latin-1 form), so
// that a Go page and a Python page pick the same session for the same header.

// ParseCookies reads a Cookie header as Quixote's parse_cookies does (Quixote 3's
// _COOKIE_RE, the header decoded as Latin-1, as python-scgi decodes it): it splits on
// semicolons and commas, removes the double quotes and backslash escapes of a quoted
// value, drops names starting with "$" (RFC 2109 attributes such as $Path), and the
// last of repeated names wins. Several Cookie lines are read as a proxy forwards them:
// joined with "; ".
func ParseCookies(header string) map[string]string {
	out := map[string]string{}
	for _, t := range quixoteCookies(header, true) {
		if !strings.HasPrefix(t.name, "$") {
			out[t.name] = t.value
		}
	}
	return out
}

// cookieValue returns the value of the last cookie called name in the request's
// Cookie lines, read as ParseCookies reads them, and whether there is one.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return "", false
	}
	toks := scanCookies(strings.Join(lines, "; "), true, name, false)
	if len(toks) == 0 {
		return "", false
	}
	return toks[len(toks)-1].value, true
}

// cookieToken is one match of Quixote's cookie expression.
type cookieToken struct {
	start, end int // byte span of the whole match in the header
	name       string
	value      string
}

// pySpace is Python's \s for str patterns (str.isspace): Go's unicode.IsSpace plus the
// information separators U+001C..U+001F.
func pySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// quixoteCookies returns the matches of Quixote 3's _COOKIE_RE in header, in order:
//
//	\s* (?P<name>[^=;,\s]+) \s* ( = \s* ( (?P<qvalue>"(\\[\x00-\x7f] | [^"])*") | (?P<value>[^";,\s]*) ) )? \s* [;,]?
//
// with the value unquoted as parse_cookies does (backslash escapes removed from the
// quoted string, then its first and last character dropped). latin1 chooses how the
// header bytes become characters: one per byte (Latin-1), or UTF-8 (invalid bytes
// become U+FFFD, which is neither white space nor punctuation, as in any decoding).
func quixoteCookies(header string, latin1 bool) []cookieToken {
	return scanCookies(header, latin1, "", true)
}

// cookieText is a header as characters, with the byte offset where each starts.
type cookieText struct {
	latin1 bool
	b      string
	cs     []rune // UTF-8 only
	off    []int  // UTF-8 only; off[n] = len(b)
	n      int
}

func (t *cookieText) at(i int) rune {
	if t.latin1 {
		return rune(t.b[i])
	}
	return t.cs[i]
}

func (t *cookieText) offset(i int) int {
	if t.latin1 {
		return i
	}
	return t.off[i]
}

func (t *cookieText) text(i, j int) string {
	if t.latin1 {
		// Latin-1 characters as Go strings (UTF-8), as Python's str holds them.
		rs := make([]rune, j-i)
		for k := range rs {
			rs[k] = rune(t.b[i+k])
		}
		return string(rs)
	}
	return string(t.cs[i:j])
}

// is reports whether characters [i, j) spell name (which is ASCII).
func (t *cookieText) is(i, j int, name string) bool {
	if j-i != len(name) {
		return false
	}
	for k := 0; k < len(name); k++ {
		if t.at(i+k) != rune(name[k]) {
			return false
		}
	}
	return true
}

// scanCookies runs Quixote's cookie expression over header and returns the matches
// whose name is name (every match when all is true).
func scanCookies(header string, latin1 bool, name string, all bool) []cookieToken {
	t := &cookieText{latin1: latin1, b: header}
	if latin1 {
		t.n = len(header)
	} else {
		for i, w := 0, 0; i < len(header); i += w {
			var r rune
			r, w = utf8.DecodeRuneInString(header[i:])
			t.cs, t.off = append(t.cs, r), append(t.off, i)
		}
		t.n = len(t.cs)
		t.off = append(t.off, len(header))
	}
	n := t.n

	// closeAt[i] is where the quoted value whose content starts at i ends (the index of
	// its closing quote), or -1: the first success of the regex engine's depth-first
	// search, which tries an escape pair before a single character and ends the
	// repetition only at a quote. What follows the closing quote always matches, so
	// success depends on the position alone and one backward pass finds it. Without
	// a quote in the header there is nothing to compute.
	var closeAt []int
	if strings.IndexByte(header, '"') >= 0 {
		closeAt = make([]int, n+2)
		closeAt[n], closeAt[n+1] = -1, -1
		for i := n - 1; i >= 0; i-- {
			c := t.at(i)
			switch {
			case c == '"':
				closeAt[i] = i
			case c == '\\' && i+1 < n && t.at(i+1) <= 0x7f && closeAt[i+2] >= 0:
				closeAt[i] = closeAt[i+2]
			default:
				closeAt[i] = closeAt[i+1]
			}
		}
	}

	nameChar := func(r rune) bool { return r != '=' && r != ';' && r != ',' && !pySpace(r) }
	valueChar := func(r rune) bool { return r != '"' && r != ';' && r != ',' && !pySpace(r) }
	skip := func(i int, ok func(rune) bool) int {
		for i < n && ok(t.at(i)) {
			i++
		}
		return i
	}

	var out []cookieToken
	for pos := 0; pos < n; {
		i := skip(pos, pySpace)
		nameEnd := skip(i, nameChar)
		if nameEnd == i {
			pos++ // no match here: finditer moves on one character
			continue
		}
		want := all || t.is(i, nameEnd, name)
		var tok cookieToken
		if want {
			tok = cookieToken{start: t.offset(pos), name: t.text(i, nameEnd)}
		}
		i = skip(nameEnd, pySpace)
		if i < n && t.at(i) == '=' {
			k := skip(i+1, pySpace)
			if k < n && t.at(k) == '"' && closeAt[k+1] >= 0 {
				q := closeAt[k+1]
				if want {
					tok.value = unquoteCookie([]rune(t.text(k, q+1)))
				}
				i = q + 1
			} else {
				m := skip(k, valueChar)
				if want {
					tok.value = t.text(k, m)
				}
				i = m
			}
			i = skip(i, pySpace)
		}
		if i < n && (t.at(i) == ';' || t.at(i) == ',') {
			i++
		}
		if want {
			tok.end = t.offset(i)
			out = append(out, tok)
		}
		pos = i
	}
	return out
}

// unquoteCookie is parse_cookies' re.sub(r'\\(.)', r'\1', qvalue)[1:-1]: "." does not
// match a newline, so a backslash before one stays.
func unquoteCookie(q []rune) string {
	u := make([]rune, 0, len(q))
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) && q[i+1] != '\n' {
			i++
		}
		u = append(u, q[i])
	}
	if len(u) < 2 {
		return ""
	}
	return string(u[1 : len(u)-1])
}

// acceptableSessionValue reports whether Python may see this session cookie value.
func acceptableSessionValue(v string) bool {
	return v == "" || v == "*del*" || store.ValidID(v) == nil
}

// badSessionCookies returns the tokens of header that are the session cookie with an
// unacceptable value, as Python reads the header decoded either way.
func badSessionCookies(header, name string, latin1 bool) []cookieToken {
	var bad []cookieToken
	for _, t := range scanCookies(header, latin1, name, false) {
		if !acceptableSessionValue(t.value) {
			bad = append(bad, t)
		}
	}
	return bad
}

// maxShieldPasses bounds the cut-and-check rounds before the header is dropped whole.
const maxShieldPasses = 8

// ShieldCookieHeader returns a Cookie header without the occurrences of the cookie
// called name whose value Python must not see as a session id, and the values it
// removed. ok is false when the header could not be cleaned by cutting and must be
// dropped whole. Shield.Handler applies it to requests.
func ShieldCookieHeader(header, name string) (clean string, removed []string, ok bool) {
	if !strings.Contains(header, name) {
		return header, nil, true // both decodings of the name are its ASCII bytes
	}
	// Both decodings of pure ASCII are the same characters: one parse suffices. Cutting
	// never adds bytes, so the header stays ASCII.
	ascii := isASCII(header)
	for range maxShieldPasses {
		bad := badSessionCookies(header, name, true)
		if len(bad) == 0 && !ascii {
			bad = badSessionCookies(header, name, false)
		}
		if len(bad) == 0 {
			return header, removed, true
		}
		var b strings.Builder
		last := 0
		for _, t := range bad {
			b.WriteString(header[last:t.start])
			last = t.end
			removed = append(removed, t.value)
		}
		b.WriteString(header[last:])
		header = b.String()
	}
	return "", removed, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Shield is middleware for a handler that forwards requests to Python (an
// scgi.Proxy): it removes from the Cookie header every occurrence of the session
// cookie whose value Quixote would read as something other than a valid session id
// (store.ValidID) or session3's "no session" values ("" and "*del*"), judged the way
// Quixote's cookie parser reads the header under both Latin-1 and UTF-8 decoding. The
// other cookies are forwarded byte for byte. Each request it cleans is logged.
//
// session3 uses the cookie value as a file name unchecked: QX_session="/etc/hostname"
// or "../../x" would make a Python worker unpickle, rewrite or delete files outside the
// session directory, and "../../dev/null" hangs it for ever.
type Shield struct {
	// Cookie is the session cookie's name; "" means DefaultCookieName.
	Cookie string
	// Logger receives a warning for each request cleaned; nil means slog.Default().
	Logger *slog.Logger
	// Removed, when not nil, is called for each request cleaned with the number of
	// session cookies taken out of it (at least 1; a header that could not be cleaned
	// by cutting is dropped whole and counts 1), for metrics.
	Removed func(r *http.Request, n int)
}

// Handler returns next behind the shield.
func (s *Shield) Handler(next http.Handler) http.Handler {
	name := s.Cookie
	if name == "" {
		name = DefaultCookieName
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lines := r.Header["Cookie"]
		if len(lines) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		// A proxy forwards all Cookie lines as one HTTP_COOKIE joined with "; ",
		// which is the text Python parses: judge exactly that.
		joined := strings.Join(lines, "; ")
		clean, removed, ok := ShieldCookieHeader(joined, name)
		if len(removed) == 0 && ok {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		if ok && strings.TrimSpace(clean) != "" {
			r2.Header["Cookie"] = []string{clean}
		} else {
			delete(r2.Header, "Cookie")
		}
		quoted := make([]string, len(removed))
		for i, v := range removed {
			if len(v) > 80 {
				v = v[:80] + "..."
			}
			quoted[i] = strconv.Quote(v)
		}
		log := s.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("removed a session cookie with an invalid id before forwarding the request",
			"cookie", name, "values", strings.Join(quoted, ","),
			"dropped_header", !ok, "remote", r.RemoteAddr, "path", r.URL.Path)
		if s.Removed != nil {
			s.Removed(r, max(len(removed), 1))
		}
		next.ServeHTTP(w, r2)
	})
}
