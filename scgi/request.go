package scgi

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"
)

type envContextKey struct{}

// RequestEnv returns the SCGI environment of a request that a Server received (or
// that ReadRequest returned), in wire order with repeated names kept; nil for any
// other request. This is what a proxy forwards unchanged to an SCGI backend.
func RequestEnv(r *http.Request) Env {
	env, _ := r.Context().Value(envContextKey{}).(Env)
	return env
}

// ProcessEnv returns the SCGI variables of a request that a Server received, as a
// map, or nil for any other request. Unlike net/http/fcgi.ProcessEnv it includes the
// variables that are also represented in the http.Request (SCRIPT_NAME, PATH_INFO,
// REMOTE_ADDR, HTTPS, HTTP_* ...), because applications ported from CGI frameworks
// read them by name: Quixote, for one, takes its cookie path from SCRIPT_NAME.
// Repeated HTTP_* variables are combined as Env.Map describes; RequestEnv has them
// separately.
func ProcessEnv(r *http.Request) map[string]string {
	env := RequestEnv(r)
	if env == nil {
		return nil
	}
	return env.Map()
}

// ReadRequest reads one SCGI request from r: the header netstring (limited to
// maxHeaderBytes as in ReadEnv) and a Body that reads exactly CONTENT_LENGTH bytes
// from r. A body that ends early fails with an error wrapping io.ErrUnexpectedEOF
// rather than returning a short body. The environment is available through
// RequestEnv and ProcessEnv.
func ReadRequest(r *bufio.Reader, maxHeaderBytes int) (*http.Request, error) {
	env, length, err := readEnv(r, maxHeaderBytes)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(env, length)
	if err != nil {
		return nil, err
	}
	req = req.WithContext(context.WithValue(context.Background(), envContextKey{}, env))
	if length > 0 {
		req.Body = &body{r: r, remaining: length}
	}
	return req, nil
}

// RequestFromEnv builds the http.Request that a Go handler sees for an SCGI
// environment, as net/http/cgi.RequestFromMap does for CGI. Its Body is http.NoBody;
// the caller attaches the real one.
//
//   - Method is REQUEST_METHOD.
//   - URL and RequestURI come from REQUEST_URI; without it from SCRIPT_NAME + PATH_INFO
//     and QUERY_STRING. As from net/http, URL has no scheme or host.
//   - Host is HTTP_HOST (the last one, if the front end's configuration repeats it:
//     see Env.Lookup), else SERVER_NAME with SERVER_PORT unless that is the scheme's
//     default port. Host is not in Header.
//   - Header has one entry per HTTP_* variable (HTTP_X_FORWARDED_FOR becomes
//     X-Forwarded-For); repeated variables become repeated values in wire order, so
//     a client's two Cookie lines give Header["Cookie"] two values and r.Cookies()
//     returns the cookies of both, exactly as net/http does for such a client.
//     Content-Type and Content-Length come from CONTENT_TYPE and CONTENT_LENGTH, the
//     variables that frame the request; the front end's HTTP_CONTENT_TYPE,
//     HTTP_CONTENT_LENGTH and HTTP_TRANSFER_ENCODING copies are not used (the body
//     arrives de-chunked, so a Transfer-Encoding header would be false). An HTTP_*
//     name or value that net/http would refuse is an error.
//   - ContentLength is CONTENT_LENGTH; Proto, ProtoMajor and ProtoMinor come from
//     SERVER_PROTOCOL (HTTP/1.0 if absent).
//   - RemoteAddr is REMOTE_ADDR and REMOTE_PORT joined by net.JoinHostPort (port 0 if
//     REMOTE_PORT is absent).
//   - TLS is non-nil, with HandshakeComplete set, when HTTPS is "on" or "1" in any
//     case; the front end terminates TLS, so no other detail is known.
//   - The environment is attached for RequestEnv and ProcessEnv.
func RequestFromEnv(env Env) (*http.Request, error) {
	length, ok := parseContentLength(env.Get("CONTENT_LENGTH"))
	if !ok {
		if _, present := env.Lookup("CONTENT_LENGTH"); present {
			return nil, malformed("CONTENT_LENGTH %q is not a decimal number", env.Get("CONTENT_LENGTH"))
		}
		length = 0
	}
	req, err := newRequest(env, length)
	if err != nil {
		return nil, err
	}
	return req.WithContext(context.WithValue(context.Background(), envContextKey{}, env)), nil
}

// cgiVars are the variables newRequest reads, collected in one pass over the
// environment (the last of a repeated name wins, as with Env.Get and in python-scgi).
type cgiVars struct {
	method, proto, uri, scriptName, pathInfo, query, https      string
	host, serverName, serverPort, remoteAddr, remotePort, ctype string
	seen                                                        uint32 // bit per field, see collect
	httpCount                                                   int    // HTTP_* variables
}

const (
	seenProto = 1 << iota
	seenRemoteAddr
	seenLength // HTTP_CONTENT_LENGTH: the client sent a Content-Length header
	seenOther  // first bit for the fields that need no presence test
)

func (c *cgiVars) collect(env Env) {
	set := func(bit uint32, field *string, value string) {
		c.seen |= bit
		*field = value
	}
	for _, v := range env {
		if strings.HasPrefix(v.Name, "HTTP_") {
			c.httpCount++
			switch v.Name {
			case "HTTP_HOST":
				set(seenOther<<0, &c.host, v.Value)
			case "HTTP_CONTENT_LENGTH":
				c.seen |= seenLength
			}
			continue
		}
		switch v.Name {
		case "REQUEST_METHOD":
			set(seenOther<<1, &c.method, v.Value)
		case "SERVER_PROTOCOL":
			set(seenProto, &c.proto, v.Value)
		case "REQUEST_URI":
			set(seenOther<<2, &c.uri, v.Value)
		case "SCRIPT_NAME":
			set(seenOther<<3, &c.scriptName, v.Value)
		case "PATH_INFO":
			set(seenOther<<4, &c.pathInfo, v.Value)
		case "QUERY_STRING":
			set(seenOther<<5, &c.query, v.Value)
		case "HTTPS":
			set(seenOther<<6, &c.https, v.Value)
		case "SERVER_NAME":
			set(seenOther<<7, &c.serverName, v.Value)
		case "SERVER_PORT":
			set(seenOther<<8, &c.serverPort, v.Value)
		case "REMOTE_ADDR":
			set(seenRemoteAddr, &c.remoteAddr, v.Value)
		case "REMOTE_PORT":
			set(seenOther<<9, &c.remotePort, v.Value)
		case "CONTENT_TYPE":
			set(seenOther<<10, &c.ctype, v.Value)
		}
	}
}

// newRequest builds the request for a validated environment. Its context is still
// context.Background: the caller attaches one that carries env.
func newRequest(env Env, length int64) (*http.Request, error) {
	var c cgiVars
	c.collect(env)
	r := &http.Request{
		Method:        c.method,
		Proto:         "HTTP/1.0",
		ProtoMajor:    1,
		ProtoMinor:    0,
		ContentLength: length,
		Body:          http.NoBody,
	}
	if !isToken(r.Method) {
		return nil, malformed("REQUEST_METHOD %q is not a method", r.Method)
	}
	if c.seen&seenProto != 0 {
		major, minor, ok := http.ParseHTTPVersion(c.proto)
		if !ok {
			return nil, malformed("SERVER_PROTOCOL %q is not an HTTP version", c.proto)
		}
		r.Proto, r.ProtoMajor, r.ProtoMinor = c.proto, major, minor
	}

	if c.uri != "" {
		u, err := url.ParseRequestURI(c.uri)
		if err != nil {
			return nil, malformed("REQUEST_URI %q: %v", c.uri, err)
		}
		r.URL, r.RequestURI = u, c.uri
	} else {
		path := c.scriptName + c.pathInfo
		if path == "" {
			path = "/"
		}
		r.URL = &url.URL{Path: path, RawQuery: c.query}
		r.RequestURI = r.URL.RequestURI()
	}

	header, err := headerFromEnv(env, &c, length)
	if err != nil {
		return nil, err
	}
	r.Header = header

	https := strings.EqualFold(c.https, "on") || c.https == "1"
	if https {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	r.Host = c.host
	if r.Host == "" {
		r.Host = c.serverName
		if port := c.serverPort; r.Host != "" && port != "" &&
			!(port == "80" && !https) && !(port == "443" && https) {
			r.Host = net.JoinHostPort(r.Host, port)
		}
	}
	if strings.ContainsAny(r.Host, " \t\r\n/\\") {
		return nil, malformed("host %q is not a host", r.Host)
	}

	if c.seen&seenRemoteAddr != 0 {
		port := c.remotePort
		if port == "" {
			port = "0"
		}
		r.RemoteAddr = net.JoinHostPort(c.remoteAddr, port)
	}
	return r, nil
}

// headerKeys maps the HTTP_* names browsers send most to their canonical header keys,
// so that building a typical request's Header allocates no key strings.
var headerKeys = map[string]string{
	"HTTP_ACCEPT":                    "Accept",
	"HTTP_ACCEPT_ENCODING":           "Accept-Encoding",
	"HTTP_ACCEPT_LANGUAGE":           "Accept-Language",
	"HTTP_AUTHORIZATION":             "Authorization",
	"HTTP_CACHE_CONTROL":             "Cache-Control",
	"HTTP_CONNECTION":                "Connection",
	"HTTP_COOKIE":                    "Cookie",
	"HTTP_DNT":                       "Dnt",
	"HTTP_IF_MODIFIED_SINCE":         "If-Modified-Since",
	"HTTP_IF_NONE_MATCH":             "If-None-Match",
	"HTTP_ORIGIN":                    "Origin",
	"HTTP_PRAGMA":                    "Pragma",
	"HTTP_REFERER":                   "Referer",
	"HTTP_SEC_FETCH_DEST":            "Sec-Fetch-Dest",
	"HTTP_SEC_FETCH_MODE":            "Sec-Fetch-Mode",
	"HTTP_SEC_FETCH_SITE":            "Sec-Fetch-Site",
	"HTTP_SEC_FETCH_USER":            "Sec-Fetch-User",
	"HTTP_UPGRADE_INSECURE_REQUESTS": "Upgrade-Insecure-Requests",
	"HTTP_USER_AGENT":                "User-Agent",
	"HTTP_X_FORWARDED_FOR":           "X-Forwarded-For",
	"HTTP_X_FORWARDED_PROTO":         "X-Forwarded-Proto",
	"HTTP_X_REAL_IP":                 "X-Real-Ip",
	"HTTP_X_REQUESTED_WITH":          "X-Requested-With",
}

// skippedHeaders are HTTP_* variables that do not become Header entries: Host is
// Request.Host, the framing headers come from the CGI variables, and the body the
// front end passes on is no longer chunked.
func skippedHeader(name string) bool {
	switch name {
	case "HTTP_HOST", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_TRANSFER_ENCODING":
		return true
	}
	return false
}

func headerFromEnv(env Env, c *cgiVars, length int64) (http.Header, error) {
	h := make(http.Header, c.httpCount+2)
	// One backing array for all values, as net/textproto does, so that each key
	// costs no separate slice allocation.
	values := make([]string, 0, c.httpCount+2)
	for _, v := range env {
		var key string
		switch {
		case v.Name == "CONTENT_TYPE" && v.Value != "":
			key = "Content-Type"
		case v.Name == "CONTENT_LENGTH" && (length > 0 || c.seen&seenLength != 0):
			key = "Content-Length"
		case !strings.HasPrefix(v.Name, "HTTP_") || skippedHeader(v.Name):
			continue
		default:
			var ok bool
			if key, ok = headerKeys[v.Name]; !ok {
				if key = headerKey(v.Name[len("HTTP_"):]); key == "" {
					return nil, malformed("variable %q does not name a header", v.Name)
				}
			}
			if !validHeaderValue(v.Value) {
				return nil, malformed("header %s has an invalid value", key)
			}
		}
		if vs, ok := h[key]; ok {
			h[key] = append(vs, v.Value)
			continue
		}
		values = append(values, v.Value)
		h[key] = values[len(values)-1 : len(values) : len(values)]
	}
	return h, nil
}

// headerKey turns the rest of an HTTP_* name into a canonical header key
// ("X_FORWARDED_HOST" -> "X-Forwarded-Host"), or "" if it is no valid header name.
func headerKey(s string) string {
	if s == "" {
		return ""
	}
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			c = '-'
		}
		if !isTokenChar(c) {
			return ""
		}
		b[i] = c
	}
	return textproto.CanonicalMIMEHeaderKey(string(b))
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderValue applies net/http's rule: no control characters except tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// body reads exactly CONTENT_LENGTH bytes of a request body. It is safe for a handler
// to read it from another goroutine; the server takes the same lock to drain it.
type body struct {
	mu        sync.Mutex
	r         io.Reader
	c         *conn     // the Server's connection, whose read deadline rate arms; nil for ReadRequest
	rate      *bodyRate // the Server's BodyLimits; nil: none
	remaining int64
	err       error // sticky read error
	closed    bool
	onEnd     func() // called once the body has been read to its end; nil: none
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	var n int
	var err error
	if b.rate != nil && b.c != nil {
		b.c.setBodyLimit(b.rate.before(time.Now()))
		n, err = b.r.Read(p)
		err = b.rate.after(time.Now(), n, err)
		if b.remaining-int64(n) == 0 || err != nil {
			b.c.setBodyLimit(time.Time{})
		}
	} else {
		n, err = b.r.Read(p)
	}
	b.remaining -= int64(n)
	if b.remaining == 0 {
		if b.onEnd != nil {
			b.onEnd()
			b.onEnd = nil
		}
		return n, io.EOF
	}
	if err == io.EOF {
		err = fmt.Errorf("scgi: request body ended %d bytes short of CONTENT_LENGTH: %w", b.remaining, io.ErrUnexpectedEOF)
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close makes further reads fail; the server still drains what the handler left.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// detach cuts the body off the connection once the request is over.
func (b *body) detach() {
	b.mu.Lock()
	b.closed = true
	b.r = nil
	b.err = http.ErrBodyReadAfterClose
	b.mu.Unlock()
}

// unread returns how many body bytes were neither read nor lost to an error.
func (b *body) unread() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0
	}
	return b.remaining
}

// drain reads and discards the rest of the body.
func (b *body) drain() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf [4096]byte
	for {
		_, err := b.readLocked(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
