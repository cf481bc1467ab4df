package scgi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxHeaderBytes is the header netstring limit used when Server.MaxHeaderBytes is
// zero: the same megabyte net/http allows for HTTP request headers. nginx's default
// buffers (large_client_header_buffers 4 8k) keep real headers far below it.
const DefaultMaxHeaderBytes = http.DefaultMaxHeaderBytes

// maxHeaderLimit caps any configured limit so that the length arithmetic cannot
// overflow on 32-bit platforms and no single header can ask for more than 1 GiB.
const maxHeaderLimit = 1 << 30

// ErrMalformed is wrapped by every error that reports a request breaking the SCGI
// framing rules (as opposed to an I/O error or a header over the size limit).
var ErrMalformed = errors.New("scgi: malformed request")

// ErrHeaderTooLarge reports a header netstring longer than the limit. The length is
// checked before any of the header is read, so such a request costs no memory.
var ErrHeaderTooLarge = errors.New("scgi: request header too large")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// A Var is one SCGI (CGI) variable as it appeared on the wire.
type Var struct {
	Name, Value string
}

// Env is the SCGI environment of one request in wire order. Names can repeat: nginx
// sends one HTTP_* variable per request header line, so a client's two Cookie lines
// arrive as two HTTP_COOKIE variables. Env keeps them apart, in order, exactly as
// received, so that a proxy can pass them on unchanged.
type Env []Var

// Lookup returns the value of the last variable called name and whether there is one.
// The last one, because that is the one python-scgi keeps (it builds a dict) and the one
// an nginx user means: a `scgi_param` written after `include scgi_params;` overrides
// the included one, and nginx sends both.
func (e Env) Lookup(name string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i].Name == name {
			return e[i].Value, true
		}
	}
	return "", false
}

// Get returns the value of the last variable called name, or "" if there is none.
func (e Env) Get(name string) string {
	v, _ := e.Lookup(name)
	return v
}

// Values returns the values of every variable called name, in wire order.
func (e Env) Values(name string) []string {
	var vs []string
	for _, v := range e {
		if v.Name == name {
			vs = append(vs, v.Value)
		}
	}
	return vs
}

// Map returns the environment as a map, the way a CGI program sees it. Repeated HTTP_*
// variables (one per request header line) are combined into one as RFC 3875 section
// 4.1.18 requires: HTTP_COOKIE values are joined with "; " (the separator of a single
// Cookie header, RFC 6265) and every other header with ", " (RFC 9110 section 5.3).
// Any other repeated name, HTTP_HOST included, keeps its last value, as in python-scgi
// (see Lookup).
func (e Env) Map() map[string]string {
	m := make(map[string]string, len(e))
	for _, v := range e {
		old, seen := m[v.Name]
		switch {
		case !seen || !joinedHeader(v.Name):
			m[v.Name] = v.Value
		case v.Name == "HTTP_COOKIE":
			m[v.Name] = old + "; " + v.Value
		default:
			m[v.Name] = old + ", " + v.Value
		}
	}
	return m
}

// joinedHeader reports whether repeats of a variable are header lines of the client
// (joined into one list), rather than a setting the front end's configuration repeats
// (the last one counts). nginx refuses a client's second Host line, so a repeated
// HTTP_HOST comes from `scgi_param HTTP_HOST ...` written on top of scgi_params.
func joinedHeader(name string) bool {
	return strings.HasPrefix(name, "HTTP_") && name != "HTTP_HOST"
}

// ReadEnv reads the header netstring of one SCGI request from r and returns its
// variables, leaving r at the first byte of the body. The header may be at most
// maxHeaderBytes long (DefaultMaxHeaderBytes if maxHeaderBytes <= 0).
//
// The framing is checked as the SCGI specification states it, with one deliberate
// exception for what nginx really sends:
//   - the length is decimal ASCII without leading zeros (except "0") and at most
//     maxHeaderBytes, else ErrHeaderTooLarge before anything more is read;
//   - the header is a sequence of NUL-terminated name/value pairs with nonempty names,
//     followed by a comma;
//   - the first variable is CONTENT_LENGTH, a nonempty run of ASCII digits;
//   - SCGI is present, and has the value "1" each time it appears;
//   - CONTENT_LENGTH and HTTP_CONTENT_LENGTH may not repeat: a second length is a
//     request smuggling attempt, and net/http refuses it too. Other names may repeat:
//     HTTP_* names once per request header line, as nginx sends them, and any
//     variable a front end's configuration sets twice (nginx sends both of
//     `include scgi_params;` and a later `scgi_param HTTP_HOST $http_host;`). Of a
//     repeated variable that is not a header line the last value counts, as in
//     python-scgi (see Env.Lookup and Env.Map).
//
// A stream that ends before the first byte returns io.EOF; one that ends inside the
// header returns an error wrapping io.ErrUnexpectedEOF. Framing errors wrap
// ErrMalformed. Read errors (such as deadline expiry) are returned as they are.
func ReadEnv(r *bufio.Reader, maxHeaderBytes int) (Env, error) {
	env, _, err := readEnv(r, maxHeaderBytes)
	return env, err
}

// readEnv is ReadEnv also returning the parsed CONTENT_LENGTH.
func readEnv(r *bufio.Reader, maxHeaderBytes int) (Env, int64, error) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	maxHeaderBytes = min(maxHeaderBytes, maxHeaderLimit)
	n, err := readNetstringLength(r, maxHeaderBytes)
	if err != nil {
		return nil, 0, err
	}
	block, err := readNetstringBody(r, n)
	if err != nil {
		return nil, 0, err
	}
	return parseEnv(block)
}

// readNetstringLength reads the "LEN:" prefix of a netstring, refusing a length over
// max as soon as its digits exceed it.
func readNetstringLength(r *bufio.Reader, max int) (int, error) {
	n, digits := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				if digits == 0 {
					return 0, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("scgi: reading header length: %w", err)
		}
		switch {
		case c == ':':
			if digits == 0 {
				return 0, malformed("header netstring has no length")
			}
			return n, nil
		case c < '0' || c > '9':
			return 0, malformed("header netstring length contains %q", c)
		case digits == 1 && n == 0:
			return 0, malformed("header netstring length has a leading zero")
		}
		n = n*10 + int(c-'0')
		digits++
		if n > max {
			return 0, fmt.Errorf("%w (limit %d bytes)", ErrHeaderTooLarge, max)
		}
	}
}

// readNetstringBody reads n header bytes and the trailing comma. A header that fits in
// r's buffer (the usual case: nginx sends well under 4 KiB) is copied once, straight
// into the string the variables are cut from. A larger one is read in growing chunks,
// so memory follows the bytes that actually arrive, not the length the client claims.
func readNetstringBody(r *bufio.Reader, n int) (string, error) {
	if n+1 <= r.Size() {
		p, err := r.Peek(n + 1)
		if err != nil {
			return "", headerReadError(err)
		}
		if p[n] != ',' {
			return "", malformed("header netstring does not end with a comma")
		}
		s := string(p[:n])
		_, _ = r.Discard(n + 1) // cannot fail: the bytes are buffered
		return s, nil
	}
	buf := make([]byte, 0, min(n+1, 64<<10))
	for len(buf) < n+1 {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), n+1))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n+1 {
			return "", headerReadError(err)
		}
	}
	if buf[n] != ',' {
		return "", malformed("header netstring does not end with a comma")
	}
	return string(buf[:n]), nil
}

func headerReadError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("scgi: reading header: %w", err)
}

// parseEnv splits a header block into variables and checks the SCGI rules. The
// variables are substrings of block, so the whole environment costs two allocations.
func parseEnv(block string) (Env, int64, error) {
	if block == "" {
		return nil, 0, malformed("empty header (no CONTENT_LENGTH)")
	}
	if block[len(block)-1] != 0 {
		return nil, 0, malformed("header does not end with a NUL")
	}
	nuls := strings.Count(block, "\x00")
	if nuls%2 != 0 {
		return nil, 0, malformed("header has a name without a value")
	}
	env := make(Env, 0, nuls/2)
	for rest := block; rest != ""; {
		i := strings.IndexByte(rest, 0)
		name := rest[:i]
		rest = rest[i+1:]
		j := strings.IndexByte(rest, 0)
		value := rest[:j]
		rest = rest[j+1:]
		if name == "" {
			return nil, 0, malformed("empty variable name")
		}
		env = append(env, Var{name, value})
	}

	if env[0].Name != "CONTENT_LENGTH" {
		return nil, 0, malformed("first variable is %q, not CONTENT_LENGTH", env[0].Name)
	}
	length, ok := parseContentLength(env[0].Value)
	if !ok {
		return nil, 0, malformed("CONTENT_LENGTH %q is not a decimal number", env[0].Value)
	}
	if err := checkUnique(env); err != nil {
		return nil, 0, err
	}
	if _, ok := env.Lookup("SCGI"); !ok {
		return nil, 0, malformed("no SCGI variable")
	}
	for _, v := range env {
		if v.Name == "SCGI" && v.Value != "1" {
			return nil, 0, malformed("SCGI is %q, not \"1\"", v.Value)
		}
	}
	return env, length, nil
}

// parseContentLength accepts a nonempty run of ASCII digits that fits an int64.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 { // 18 digits always fit an int64
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// checkUnique rejects a repeated length: CONTENT_LENGTH (the framing) or
// HTTP_CONTENT_LENGTH (the client's header, which a front end must not pass twice).
func checkUnique(env Env) error {
	var length, header int
	for _, v := range env {
		switch v.Name {
		case "CONTENT_LENGTH":
			length++
			if length > 1 {
				return malformed("variable %q repeated", v.Name)
			}
		case "HTTP_CONTENT_LENGTH":
			header++
			if header > 1 {
				return malformed("variable %q repeated", v.Name)
			}
		}
	}
	return nil
}
