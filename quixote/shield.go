package quixote

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qxbridge/qxbridge/ratelog"
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
// The same expression is also a denial of service: Python's engine backtracks, and
// some headers make it try an exponential (an unterminated quoted value followed by
// backslashes) or quadratic (white space where no cookie starts) number of ways
// before giving up. scan counts those steps from the grammar, and the shield cuts out
// the junk responsible when they pass maxBacktrack (see ShieldCookieHeader).
//
// The Manager and Cookie.SessionID read the session id from the header as the shield
// forwards it, with the same grammar (over the Latin-1 form), so that a Go page, a
// Python page and the gateway's ordering pick the same session for the same header.

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

// shieldedSessionValue returns the value of the cookie called name that Quixote's
// parse_cookies reads from header once ShieldCookieHeader has cleaned it ("" when
// there is none or the header is dropped whole), and the values the shield removed.
// It is the one rule by which Go and Python pick a request's session.
func shieldedSessionValue(header, name string) (string, []string) {
	if isASCII(header) {
		// The common case in one scan: ShieldCookieHeader judges an ASCII header by
		// this very scan, and when it finds nothing to cut the header is forwarded
		// as it is, so Python reads the last of these tokens.
		s := scan(header, true, name, false)
		clean := s.spaceCost+s.tailCost <= maxBacktrack
		for _, t := range s.toks {
			clean = clean && acceptableSessionValue(t.value)
		}
		if clean {
			if len(s.toks) == 0 {
				return "", nil
			}
			return s.toks[len(s.toks)-1].value, nil
		}
	}
	c := ShieldCookieHeader(header, name)
	if c.Dropped {
		return "", c.Removed
	}
	toks := scanCookies(c.Header, true, name, false)
	if len(toks) == 0 {
		return "", c.Removed
	}
	return toks[len(toks)-1].value, c.Removed
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
	return scan(header, latin1, name, all).toks
}

// cookieScan is what running Quixote's cookie expression over a header finds, and
// what it costs Python's regular expression engine beyond one pass over the text.
type cookieScan struct {
	toks []cookieToken
	// spaceCost counts the steps spent on white space where a match attempt fails:
	// an attempt takes all the white space, finds no name after it (but "=", ";",
	// "," or the end) and gives it back one character at a time, and finditer then
	// tries again one character further, so a run of n costs about n*n/2.
	spaceCost int64
	spaces    [][2]int // byte spans of those runs
	// tailCost counts the steps spent on quoted values that cannot end where the
	// engine first tries (see scan); they all explore the text after the header's
	// last double quote, from tail (a byte offset; -1 when no attempt does).
	tailCost int64
	tail     int
}

// maxSteps bounds the steps a quoted value's failure explores before the count
// stops (it saturates: the bound only has to exceed maxBacktrack).
const maxSteps = 1 << 40

// scan runs Quixote's cookie expression over header (see quixoteCookies) and returns
// the matches whose name is name (every match when all is true), and what the text
// costs Python (cookieScan).
//
// Python's engine (sre) is a backtracking one without memory of failed positions.
// Two shapes of text make it do more than a pass over the header:
//
//   - A quoted value, "(\\[\x00-\x7f] | [^"])*", where a backslash followed by an
//     ASCII character can be read two ways: as an escape pair or as a character of
//     its own. The engine tries the pair first and ends the repetition at the first
//     quote it meets. Reading fails only when there is no quote left, which happens
//     when the value starts at the header's last quote (an unterminated value), or
//     when the pairs first chosen swallow the last quote as an escape (\"). Then it
//     tries every other way of reading the rest of the header, whose number grows as
//     the Fibonacci numbers with each backslash: 40 backslashes keep a worker busy
//     for seconds, 50 for half an hour.
//   - White space where an attempt fails (see cookieScan.spaceCost): quadratic.
func scan(header string, latin1 bool, name string, all bool) cookieScan {
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
	res := cookieScan{tail: -1}

	// esc reports whether the character at i and the next can be read as an escape
	// pair: that is where the engine has two choices.
	esc := func(i int) bool { return t.at(i) == '\\' && i+1 < n && t.at(i+1) <= 0x7f }

	// closeAt[i] is where the quoted value whose content starts at i ends (the index of
	// its closing quote), or -1: the first success of the engine's depth-first search.
	// What follows the closing quote always matches, so success depends on the
	// position alone and one backward pass finds it. swallows[i] is true when that
	// search first takes the header's last quote as an escape pair and fails over
	// the rest of the header before backing off. Without a quote in the header there
	// is nothing to compute.
	var closeAt []int
	var swallows []bool
	lastQuote := -1
	if strings.IndexByte(header, '"') >= 0 {
		closeAt = make([]int, n+2)
		swallows = make([]bool, n+2)
		closeAt[n], closeAt[n+1] = -1, -1
		for i := n - 1; i >= 0; i-- {
			switch {
			case t.at(i) == '"':
				closeAt[i] = i
				if lastQuote < 0 {
					lastQuote = i
				}
			case esc(i) && closeAt[i+2] >= 0:
				closeAt[i], swallows[i] = closeAt[i+2], swallows[i+2]
			case esc(i):
				// The pair leaves no quote ahead: it fails, then the backslash alone.
				closeAt[i], swallows[i] = closeAt[i+1], true
			default:
				closeAt[i], swallows[i] = closeAt[i+1], swallows[i+1]
			}
		}
	}
	// tailSteps is the size of the search tree a failed quoted value explores: every
	// way of reading the characters after the last quote as pairs and singles.
	tailSteps := func() int64 {
		next, cur := int64(0), int64(1) // steps from i+2 and from i+1, starting at i = n
		for i := n - 1; i > lastQuote; i-- {
			s := 1 + cur
			if esc(i) {
				s += next
			}
			next, cur = cur, min(s, maxSteps)
		}
		return cur
	}

	nameChar := func(r rune) bool { return r != '=' && r != ';' && r != ',' && !pySpace(r) }
	valueChar := func(r rune) bool { return r != '"' && r != ';' && r != ',' && !pySpace(r) }
	skip := func(i int, ok func(rune) bool) int {
		for i < n && ok(t.at(i)) {
			i++
		}
		return i
	}

	for pos := 0; pos < n; {
		i := skip(pos, pySpace)
		nameEnd := skip(i, nameChar)
		if nameEnd == i {
			// The attempts at pos..i all fail (each takes the white space up to i and
			// gives it back), and so does the one at i: finditer goes on after i.
			if w := int64(i - pos); w > 0 {
				res.spaceCost += w * (w + 1) / 2
				res.spaces = append(res.spaces, [2]int{t.offset(pos), t.offset(i)})
			}
			pos = i + 1
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
			if k < n && t.at(k) == '"' && (closeAt[k+1] < 0 || swallows[k+1]) && res.tail < 0 {
				res.tail = t.offset(lastQuote)
				res.tailCost = tailSteps()
			}
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
			res.toks = append(res.toks, tok)
		}
		pos = i
	}
	return res
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

// maxBacktrack is the most steps beyond a pass over the text that the shield lets
// Python's cookie parser spend on a header: about a millisecond of CPython.
const maxBacktrack = 1 << 14

// Cleaned is what ShieldCookieHeader makes of a Cookie header.
type Cleaned struct {
	// Header is the header to forward; "" when Dropped.
	Header string
	// Removed holds the session cookie values taken out (invalid ids).
	Removed []string
	// Defused holds the pieces of text taken out because Quixote's parser would
	// backtrack over them too long (see ShieldCookieHeader): cookies with a backslash
	// after a quoted value that cannot end, and white space where a match fails.
	Defused []string
	// Dropped is true when cutting could not clean the header: it must not be
	// forwarded at all.
	Dropped bool
}

// Changed reports whether the header is not forwarded as it came.
func (c *Cleaned) Changed() bool { return c.Dropped || len(c.Removed)+len(c.Defused) > 0 }

// ShieldCookieHeader cleans a Cookie header for Python (see Shield): it takes out
// every occurrence of the cookie called name whose value Python must not see as a
// session id, and defuses the text that would make Quixote's parse_cookies
// backtrack, judged under both decodings.
//
// Defusing is decided by the grammar, without running an engine: when the steps
// Python's engine would spend beyond one pass over the header exceed 16384 (about a
// millisecond of CPython), the shield cuts out every cookie that
// contains a backslash and lies after the header's last double quote (the text a
// failing quoted value explores; RFC 6265 allows no backslash in a cookie), and every
// run of white space where a match attempt fails (Python finds no cookie there, so
// its reading of the rest is unchanged). Everything else is forwarded byte for byte.
// A cut is replaced by a ";" where the texts on its two sides could otherwise join
// into one cookie.
func ShieldCookieHeader(header, name string) Cleaned {
	res := Cleaned{Header: header}
	// Both decodings of pure ASCII are the same characters: one parse suffices. Cutting
	// never adds bytes but ";", so the header stays ASCII.
	ascii := isASCII(header)
	if ascii && !strings.Contains(header, name) && !mayBacktrack(header) {
		return res // the common case, without allocating
	}
	for range maxShieldPasses {
		var cuts []shieldCut
		for _, latin1 := range []bool{true, false} {
			if !latin1 && ascii {
				break
			}
			cuts = shieldCuts(res.Header, name, latin1)
			if len(cuts) > 0 {
				break
			}
		}
		if len(cuts) == 0 {
			return res
		}
		res.Header = applyCuts(res.Header, cuts, &res)
	}
	return Cleaned{Removed: res.Removed, Defused: res.Defused, Dropped: true}
}

// mayBacktrack is a quick test that an ASCII header has none of the shapes scan
// costs: no double quote and no two white-space characters in a row.
func mayBacktrack(header string) bool {
	if strings.IndexByte(header, '"') >= 0 {
		return true
	}
	for i := 1; i < len(header); i++ {
		if pySpace(rune(header[i])) && pySpace(rune(header[i-1])) {
			return true
		}
	}
	// A single white-space character before "=", ";", "," or the end costs one step.
	return false
}

// shieldCut is a byte span of the header to take out.
type shieldCut struct {
	start, end int
	session    bool   // an invalid session id; value holds it
	token      bool   // a whole match (else white space)
	value      string // the session value
}

// shieldCuts returns what the shield takes out of header in one round, read under
// one decoding, sorted and without overlaps.
func shieldCuts(header, name string, latin1 bool) []shieldCut {
	s := scan(header, latin1, name, false)
	var cuts []shieldCut
	for _, t := range s.toks {
		if !acceptableSessionValue(t.value) {
			cuts = append(cuts, shieldCut{start: t.start, end: t.end, session: true, token: true, value: t.value})
		}
	}
	if s.spaceCost+s.tailCost > maxBacktrack {
		for _, sp := range s.spaces {
			cuts = append(cuts, shieldCut{start: sp[0], end: sp[1]})
		}
		if s.tail >= 0 {
			for _, t := range scan(header, latin1, "", true).toks {
				if t.start >= s.tail && strings.IndexByte(header[t.start:t.end], '\\') >= 0 {
					cuts = append(cuts, shieldCut{start: t.start, end: t.end, token: true})
				}
			}
		}
	}
	slices.SortFunc(cuts, func(a, b shieldCut) int { return cmp.Compare(a.start, b.start) })
	// Tokens never overlap one another nor the failing white space between them; the
	// same token can be cut for two reasons.
	return slices.CompactFunc(cuts, func(a, b shieldCut) bool { return a.start == b.start })
}

// applyCuts takes the cuts out of header, noting in res what was taken.
func applyCuts(header string, cuts []shieldCut, res *Cleaned) string {
	var b strings.Builder
	last := 0
	for _, c := range cuts {
		b.WriteString(header[last:c.start])
		if c.session {
			res.Removed = append(res.Removed, c.value)
		} else {
			res.Defused = append(res.Defused, header[c.start:c.end])
		}
		// A cookie cut out from between a value and a name could let them join
		// ("a=b" + `"\\\ ` + "c=d" reads as a="bc=d"): a separator keeps them
		// apart; Python reads one extra ";" as nothing.
		if c.token && c.start > 0 && c.end < len(header) && !strings.ContainsRune(";, \t", rune(header[c.start-1])) {
			b.WriteByte(';')
		}
		last = c.end
	}
	b.WriteString(header[last:])
	return b.String()
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
// scgi.Proxy). It cleans the Cookie header as ShieldCookieHeader does:
//
//   - it removes every occurrence of the session cookie whose value Quixote would
//     read as something other than a valid session id (store.ValidID) or session3's
//     "no session" values ("" and "*del*"). session3 uses the cookie value as a file
//     name unchecked: QX_session="/etc/hostname" or "../../x" would make a Python
//     worker unpickle, rewrite or delete files outside the session directory, and
//     "../../dev/null" hangs it for ever;
//   - it defuses the text that would make Quixote's cookie parser backtrack:
//     a="\\\\... with 40 backslashes and no closing quote keeps a worker at full
//     CPU for seconds, 50 for half an hour.
//
// Both are judged the way Quixote's parser reads the header under both Latin-1 and
// UTF-8 decoding. The other cookies are forwarded byte for byte. Each request it
// cleans is logged as a warning with the attribute hostile=cookie, values truncated;
// a logger whose handler is a [ratelog.Handler] (the gateway's is) limits how many
// such lines are written.
type Shield struct {
	// Cookie is the session cookie's name; "" means DefaultCookieName.
	Cookie string
	// Logger receives a warning for each request cleaned; nil means slog.Default().
	Logger *slog.Logger
	// Removed, when not nil, is called for each request cleaned with the number of
	// session cookies taken out of it, or with 1 for a header that was only defused
	// or could not be cleaned by cutting and was dropped whole, for metrics.
	Removed func(r *http.Request, n int)
}

// maxLoggedValue bounds each value the shield logs.
const maxLoggedValue = 80

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
		c := ShieldCookieHeader(strings.Join(lines, "; "), name)
		if !c.Changed() {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		if !c.Dropped && strings.TrimSpace(c.Header) != "" {
			r2.Header["Cookie"] = []string{c.Header}
		} else {
			delete(r2.Header, "Cookie")
		}
		log := s.Logger
		if log == nil {
			log = slog.Default()
		}
		msg := "removed a session cookie with an invalid id before forwarding the request"
		if len(c.Removed) == 0 {
			msg = "defused a Cookie header that Quixote's parser would backtrack on before forwarding the request"
		}
		log.Warn(msg, ratelog.Key, "cookie", "cookie", name,
			"values", quoteValues(c.Removed), "defused", quoteValues(c.Defused),
			"dropped_header", c.Dropped, "remote", r.RemoteAddr, "path", r.URL.Path)
		if s.Removed != nil {
			s.Removed(r, max(len(c.Removed), 1))
		}
		next.ServeHTTP(w, r2)
	})
}

// quoteValues quotes values for a log line, each cut to maxLoggedValue bytes and at
// most 4 of them.
func quoteValues(values []string) string {
	var b strings.Builder
	for i, v := range values {
		if i == 4 {
			fmt.Fprintf(&b, ",... (%d more)", len(values)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if len(v) > maxLoggedValue {
			v = v[:maxLoggedValue] + "..."
		}
		b.WriteString(strconv.Quote(v))
	}
	return b.String()
}
