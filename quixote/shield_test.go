package quixote

import (
	"bufio"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pyCookieReader runs gateway_cookie_check.py: CPython reading Cookie headers with
// Quixote's cookie expression.
type pyCookieReader struct {
	in  io.WriteCloser
	out *bufio.Reader
}

type pyMatches struct {
	Latin1 [][4]any `json:"latin1"`
	UTF8   [][4]any `json:"utf8"`
}

func startPyCookieReader(t testing.TB) *pyCookieReader {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "gateway_cookie_check.py")
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	return &pyCookieReader{in: in, out: bufio.NewReader(out)}
}

func (p *pyCookieReader) read(t testing.TB, header string) pyMatches {
	t.Helper()
	return askHeader[pyMatches](t, p.in, p.out, header)
}

// askHeader sends a header to one of the cookie programs (a JSON string of its bytes
// on a line) and reads its one-line JSON answer.
func askHeader[T any](t testing.TB, in io.Writer, out *bufio.Reader, header string) T {
	t.Helper()
	b, _ := json.Marshal([]byte(header))
	_, err := in.Write(append(b, '\n'))
	require.NoError(t, err)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	var m T
	require.NoError(t, json.Unmarshal([]byte(line), &m))
	return m
}

// goMatches is quixoteCookies in the script's form: character offsets.
func goMatches(header string, latin1 bool) [][4]any {
	out := [][4]any{}
	for _, tok := range quixoteCookies(header, latin1) {
		start, end := tok.start, tok.end
		if !latin1 {
			start, end = utf8.RuneCountInString(header[:start]), utf8.RuneCountInString(header[:end])
		}
		name, value := tok.name, tok.value
		if latin1 {
			name, value = latin1String(name), latin1String(value)
		}
		out = append(out, [4]any{float64(start), float64(end), name, value})
	}
	return out
}

// latin1String turns a string of Latin-1 characters (as quixoteCookies makes them,
// one rune per byte, encoded as UTF-8) into what json.Unmarshal gives for Python's
// str of the same characters: the same thing.
func latin1String(s string) string { return s }

// trickyHeaders are Cookie headers that read differently to different parsers.
var trickyHeaders = []string{
	``, `a`, `a = `, `a = ""`, `a = "\""`, `a, b; c`, `a, b=1`, `a = ";, ` + "\t" + `";`,
	`$Version="1"; Customer="WILE_E_COYOTE"; $Path="/acme"`,
	`QX_session=../../x`, `QX_session="/etc/hostname"`, `a=1, QX_session=../../dev/null; b=2`,
	`QX_session = ../x`, `QX_session=good1234567; QX_session=../x`, `QX_session=../x; QX_session=good1234567`,
	"QX_session\x85=../x", "QX_session\xc2\x85=../x", "QX_session\xe3\x80\x80=../x", "QX_session\xa0=../x",
	`x="\"; QX_session=../x`, `x="\\"; QX_session=../x`, `x="\"; QX_session="../x"`, `x="a\"b"; QX_session=../y`,
	`QX_session=*del*`, `QX_session=`, `QX_session=AAAAAAAAAAA`, `QX_session="AAAAAAAAAAA"`, `QX_session="AA\AAAAAAAAA"`,
	`QX_session=%2e%2e`, `QX_session=aaa.bbb`, "\x1cQX_session=../x", "QX_session\t=\t\"../x\"",
	`QX_session=` + strings.Repeat("a", 65), `QX_session="a"b"`, `QX_session="\`, `QX_session="\"`, "QX_session=\"a\\\n\"",
	`"QX_session=../x`, `QX_session"=../x`, `==QX_session=../x`, `;;QX_session=../x,,`, "QX_session=\xff../x",
	`QX_session="abcdefghijk";x=1`, `QX_session=abcdefghijk"x"`, `QX_session="abc"def";QX_session=../z`,
	"x=\"\xc2\"; QX_session=../q", "x=\"\\\xc2\"; QX_session=../q\"",
}

// randomHeader builds a header from pieces that matter to the cookie grammar.
func randomHeader(rng *rand.Rand) string {
	pieces := []string{"QX_session", "=", `"`, `\`, ";", ",", " ", "\t", "\x85", "\xa0", "\xc2", "\xc2\x85", "\x1c",
		"$", "a", "../", "AAAAAAAAAAA", "*del*", "\n", "é", "\xe3\x80\x80", "x"}
	var b strings.Builder
	for range rng.IntN(16) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

// TestQuixoteCookieGrammarMatchesCPython checks quixoteCookies against CPython running
// Quixote's expression, match for match (spans, names, unquoted values), under both
// decodings.
func TestQuixoteCookieGrammarMatchesCPython(t *testing.T) {
	py := startPyCookieReader(t)
	headers := append([]string(nil), trickyHeaders...)
	rng := rand.New(rand.NewPCG(7, 11))
	for range 3000 {
		headers = append(headers, randomHeader(rng))
	}
	for _, h := range headers {
		want := py.read(t, h)
		// Latin-1: compare with Python's text re-encoded the way Go holds it.
		got := goMatches(h, true)
		require.Equal(t, len(want.Latin1), len(got), "latin-1 %q\npython %v\ngo     %v", h, want.Latin1, got)
		for i := range got {
			assert.Equal(t, want.Latin1[i], got[i], "latin-1 %q match %d", h, i)
		}
		// ParseCookies is parse_cookies: the script checked that its matches, the
		// last of each name and no "$" names, are what parse_cookies returns.
		dict := map[string]string{}
		for _, m := range want.Latin1 {
			if name := m[2].(string); !strings.HasPrefix(name, "$") {
				dict[name] = m[3].(string)
			}
		}
		assert.Equal(t, dict, ParseCookies(h), "ParseCookies %q", h)
		if want.UTF8 != nil {
			assert.Equal(t, want.UTF8, goMatches(h, false), "utf-8 %q", h)
		} else {
			assert.False(t, utf8.ValidString(h), "Python refused UTF-8 %q", h)
		}
	}
}

// TestShieldRemovesWhatPythonWouldRead shields each tricky header and has CPython read
// the result: no session cookie with an invalid value may remain under either
// decoding, clean headers stay byte for byte, and other cookies survive.
func TestShieldRemovesWhatPythonWouldRead(t *testing.T) {
	py := startPyCookieReader(t)
	headers := append([]string(nil), trickyHeaders...)
	rng := rand.New(rand.NewPCG(3, 5))
	for range 3000 {
		headers = append(headers, randomHeader(rng))
	}
	removedSome := 0
	for _, h := range headers {
		c := ShieldCookieHeader(h, "QX_session")
		clean := c.Header
		m := py.read(t, clean)
		for _, set := range [][][4]any{m.Latin1, m.UTF8} {
			for _, tok := range set {
				if tok[2] == "QX_session" {
					assert.True(t, acceptableSessionValue(tok[3].(string)), "shielding %q left %q; Python reads QX_session=%q", h, clean, tok[3])
				}
			}
		}
		if !c.Changed() {
			assert.Equal(t, h, clean, "nothing to remove: the header is forwarded as it is")
		} else {
			removedSome++
		}
	}
	assert.Greater(t, removedSome, 30, "the corpus exercises removal")

	for h, want := range map[string]string{
		`a=1; QX_session=../x; b="two"`:                `a=1; b="two"`,
		`QX_session=../x; b=2`:                         ` b=2`,
		`a=1, QX_session="/etc/hostname"`:              `a=1,`,
		`QX_session=good1234567; other=../`:            `QX_session=good1234567; other=../`,
		`a=1; QX_session=../x; QX_session=ok_id-12345`: `a=1; QX_session=ok_id-12345`,
	} {
		c := ShieldCookieHeader(h, "QX_session")
		assert.False(t, c.Dropped)
		assert.Equal(t, want, c.Header, h)
	}
	c := ShieldCookieHeader(`sid=../x; QX_session=../y`, "sid")
	assert.False(t, c.Dropped)
	assert.Equal(t, ` QX_session=../y`, c.Header, "only the configured cookie name is judged")
	assert.Equal(t, []string{"../x"}, c.Removed)
}

// FuzzShieldCookieHeader: whatever the header, the shielded one holds no session
// cookie that Quixote's grammar would read as an invalid id, under either decoding,
// and a header without one is left alone.
func FuzzShieldCookieHeader(f *testing.F) {
	for _, h := range trickyHeaders {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if len(h) > 8192 {
			return
		}
		c := ShieldCookieHeader(h, "QX_session")
		if c.Dropped {
			return // dropped whole
		}
		clean := c.Header
		for _, latin1 := range []bool{true, false} {
			s := scan(clean, latin1, "QX_session", false)
			for _, tok := range s.toks {
				if !acceptableSessionValue(tok.value) {
					t.Fatalf("shielding %q left %q with %q", h, clean, tok.value)
				}
			}
			if s.spaceCost+s.tailCost > maxBacktrack {
				t.Fatalf("shielding %q left %q, which costs Python %d+%d steps", h, clean, s.spaceCost, s.tailCost)
			}
		}
		if !c.Changed() && clean != h {
			t.Fatalf("nothing removed but %q became %q", h, clean)
		}
		if len(clean) > len(h) {
			t.Fatalf("shielding grew the header")
		}
	})
}

// TestShieldSecondPass: cutting one cookie out can make the text around it read as a
// new session cookie (here the two decodings disagree about \xc2\x85 and \xa0), so
// the shield checks its result again until it is clean.
func TestShieldSecondPass(t *testing.T) {
	h := "QX_session= \xa0\xa0\xc2\tQX_session=\x85AAAAAAAAAAA,\x85\xc2"
	first := badSessionCookies(h, "QX_session", true)
	require.NotEmpty(t, first)
	var b strings.Builder
	last := 0
	for _, tok := range first {
		b.WriteString(h[last:tok.start])
		last = tok.end
	}
	once := b.String() + h[last:]
	assert.NotEmpty(t, append(badSessionCookies(once, "QX_session", true), badSessionCookies(once, "QX_session", false)...),
		"one round of cuts is not enough for this header")
	c := ShieldCookieHeader(h, "QX_session")
	require.False(t, c.Dropped)
	assert.Equal(t, "\x85\xc2", c.Header)
	assert.Len(t, c.Removed, 2)
	for _, latin1 := range []bool{true, false} {
		assert.Empty(t, badSessionCookies(c.Header, "QX_session", latin1))
	}
}

// BenchmarkShieldCookieHeader: what the shield costs a proxied request.
func BenchmarkShieldCookieHeader(b *testing.B) {
	for name, h := range map[string]string{
		"no-session-cookie": `theme=dark; _ga=GA1.2.3456789.1234567890; lang=en`,
		"valid":             `theme=dark; QX_session="abcdefghijk"; _ga=GA1.2.3456789.1234567890; lang=en`,
		"hostile":           `theme=dark; QX_session="../../etc/hostname"; lang=en`,
		"valid-non-ascii":   `theme=dark; QX_session="abcdefghijk"; name="Zoë"`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ShieldCookieHeader(h, "QX_session")
			}
		})
	}
}

// sessionIDOf is Cookie.SessionID for a request carrying header.
func sessionIDOf(header string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", header)
	return (&Cookie{}).SessionID(r)
}

// pythonSession is the session id Python loads for a Cookie header it receives:
// parse_cookies' value, when session3 would take it as an id at all.
func pythonSession(v string) string {
	if v == "*del*" || store.ValidID(v) != nil {
		return ""
	}
	return v
}

// TestSessionIDIsTheShieldedSession: the id Go orders a request by is the session
// Python loads behind the shield, even when an invalid duplicate of the session
// cookie follows a valid one (the shield cuts the invalid one; Python then reads
// the valid one).
func TestSessionIDIsTheShieldedSession(t *testing.T) {
	const valid = "AbCdEfGhIjK"
	for h, want := range map[string]string{
		"QX_session=" + valid + "; QX_session=../etc":      valid,
		"QX_session=" + valid + ", QX_session=/etc/passwd": valid,
		`QX_session="` + valid + `"; QX_session="a b"`:     valid,
		"QX_session=../etc; QX_session=" + valid:           valid,
		"QX_session=" + valid + "; QX_session=*del*":       "",
		"QX_session=" + valid + "; QX_session=ZZZZZZZZZZZ": "ZZZZZZZZZZZ",
		"QX_session=../x": "",
		`a="` + strings.Repeat(`\`, 40) + "; QX_session=" + valid: valid,
	} {
		assert.Equal(t, want, sessionIDOf(h), h)
		c := ShieldCookieHeader(h, DefaultCookieName)
		assert.Equal(t, want, pythonSession(ParseCookies(c.Header)[DefaultCookieName]), "Python behind the shield, %q", h)
	}
}

// TestSessionIDMatchesCPythonBehindShield has CPython run Quixote's parse_cookies on
// the shielded form of each tricky and random header: the session Python loads is
// SessionID's.
func TestSessionIDMatchesCPythonBehindShield(t *testing.T) {
	py := startPyCookieReader(t)
	headers := append([]string(nil), trickyHeaders...)
	rng := rand.New(rand.NewPCG(13, 17))
	for range 2000 {
		headers = append(headers, randomHeader(rng))
	}
	for _, h := range headers {
		c := ShieldCookieHeader(h, DefaultCookieName)
		want := ""
		if !c.Dropped {
			for _, m := range py.read(t, c.Header).Latin1 {
				if m[2] == DefaultCookieName {
					want = m[3].(string) // the last one wins
				}
			}
		}
		require.Equal(t, pythonSession(want), sessionIDOf(h), "header %q, forwarded as %q", h, c.Header)
	}
}

// FuzzSessionIDMatchesShield: for any header, SessionID is the session Quixote's
// grammar reads from the header the shield forwards.
func FuzzSessionIDMatchesShield(f *testing.F) {
	for _, h := range trickyHeaders {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if len(h) > 8192 || strings.ContainsAny(h, "\r\n\x00") {
			return // not a header net/http would hold
		}
		want := ""
		if c := ShieldCookieHeader(h, DefaultCookieName); !c.Dropped {
			want = pythonSession(ParseCookies(c.Header)[DefaultCookieName])
		}
		if got := sessionIDOf(h); got != want {
			t.Fatalf("header %q: SessionID %q, Python behind the shield %q", h, got, want)
		}
	})
}
