package scgi

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// errBadRequestEnv reports a request that cannot be expressed as an SCGI environment:
// a NUL byte in a name or value would split the header list.
var errBadRequestEnv = errors.New("scgi: request has a NUL byte in its path or a header")

// errNotMounted reports a request whose path is not under Proxy.ScriptName.
var errNotMounted = errors.New("scgi: request path is not under the proxy's ScriptName")

// controlled lists the variables the proxy always writes itself, whatever the front end
// sent: the framing (CONTENT_LENGTH, SCGI), the mount split (SCRIPT_NAME, PATH_INFO),
// the request line as the Go side forwards it, and HTTP_* (rebuilt from r.Header, so that
// repeated headers are joined and middleware changes take effect).
func controlled(name string) bool {
	switch name {
	case "CONTENT_LENGTH", "SCGI", "SCRIPT_NAME", "PATH_INFO",
		"REQUEST_METHOD", "REQUEST_URI", "QUERY_STRING", "CONTENT_TYPE":
		return true
	}
	return strings.HasPrefix(name, "HTTP_")
}

// skipHeader reports whether a request header is not forwarded as an HTTP_* variable.
func skipHeader(name string) bool {
	if strings.IndexByte(name, '_') >= 0 {
		// X_User and X-User would both become HTTP_X_USER: a client could forge a header
		// that a front end or middleware vouches for. Drop the underscored spelling.
		return true
	}
	switch name {
	case "Proxy": // httpoxy: HTTP_PROXY would be read as a proxy setting by CGI code.
		return true
	case "Content-Length", "Content-Type": // sent as CONTENT_LENGTH / CONTENT_TYPE
		return true
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true // hop-by-hop (RFC 9110 section 7.6.1), as httputil.ReverseProxy drops
	}
	return false
}

// headerBuf builds the SCGI header netstring "LEN:name\0value\0...," in one byte slice,
// so that it goes to the backend in one write. The payload is appended after room left
// for the length digits, which are filled in last.
type headerBuf struct {
	b   []byte
	bad bool // a NUL byte appeared in a name or value
}

// lenRoom is the room reserved for "LEN:" in front of the payload: 9 digits and a colon
// cover any header a request can have (the proxy refuses payloads of 1e9 bytes or more).
const lenRoom = 10

func (h *headerBuf) reset() {
	var room [lenRoom]byte
	h.b = append(h.b[:0], room[:]...)
	h.bad = false
}

// addInt adds a variable whose value is a decimal number.
func (h *headerBuf) addInt(name string, n int64) {
	h.b = append(h.b, name...)
	h.b = append(h.b, 0)
	h.b = strconv.AppendInt(h.b, n, 10)
	h.b = append(h.b, 0)
}

func (h *headerBuf) add(name, value string) {
	if strings.IndexByte(name, 0) >= 0 || strings.IndexByte(value, 0) >= 0 {
		h.bad = true
	}
	h.b = append(h.b, name...)
	h.b = append(h.b, 0)
	h.b = append(h.b, value...)
	h.b = append(h.b, 0)
}

// addHeader adds HTTP_NAME for a canonical header name and its values joined per
// RFC 9110 section 5.3 (", "), or with "; " for Cookie (RFC 6265 section 5.4): the worker
// keeps only the last of repeated names, so repeated lines must become one variable.
func (h *headerBuf) addHeader(name string, values []string) {
	if strings.IndexByte(name, 0) >= 0 {
		h.bad = true
	}
	h.b = append(h.b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '-':
			c = '_'
		}
		h.b = append(h.b, c)
	}
	h.b = append(h.b, 0)
	sep := ", "
	if name == "Cookie" {
		sep = "; "
	}
	for i, v := range values {
		if i > 0 {
			h.b = append(h.b, sep...)
		}
		if strings.IndexByte(v, 0) >= 0 {
			h.bad = true
		}
		h.b = append(h.b, v...)
	}
	h.b = append(h.b, 0)
}

// finish writes the length prefix and the trailing comma and returns the netstring.
func (h *headerBuf) finish() ([]byte, error) {
	if h.bad {
		return nil, errBadRequestEnv
	}
	n := len(h.b) - lenRoom
	if n >= 1e9 {
		return nil, errors.New("scgi: request header too large")
	}
	var digits [lenRoom]byte
	d := strconv.AppendInt(digits[:0], int64(n), 10)
	d = append(d, ':')
	start := lenRoom - len(d)
	copy(h.b[start:], d)
	h.b = append(h.b, ',')
	return h.b[start:], nil
}

// FrontScriptName returns the prefix an SCGI front end mounted the application at, for
// a request that a Server received: the front end's SCRIPT_NAME without a trailing
// slash, when the request path lies under it (whole path segments only: "/app" mounts
// "/app" and "/app/x" but not "/application"). It returns "" for any other request, for
// a path outside SCRIPT_NAME, and for Apache's form without path information:
// mod_proxy_scgi sends SCRIPT_NAME = the whole path and no PATH_INFO (unless the
// proxy-scgi-pathinfo variable is set), which names no mount point at all. So a
// SCRIPT_NAME that equals the request path and comes without a PATH_INFO variable
// counts as "". (A front end really mounting an application at exactly one path, with
// no PATH_INFO, looks the same; it should send PATH_INFO "".)
//
// This is the rule by which Proxy splits SCRIPT_NAME and PATH_INFO when its ScriptName
// is empty; Go handlers that derive a cookie path or links from the mount point use it
// to agree with the Python side.
func FrontScriptName(r *http.Request) string {
	return frontPrefix(RequestEnv(r), r.URL.Path)
}

func frontPrefix(front Env, path string) string {
	script, ok := front.Lookup("SCRIPT_NAME")
	if !ok {
		return ""
	}
	if _, hasInfo := front.Lookup("PATH_INFO"); !hasInfo && script == path {
		return "" // Apache's mod_proxy_scgi without proxy-scgi-pathinfo
	}
	prefix := strings.TrimSuffix(script, "/")
	if prefix == "" || !under(path, prefix) {
		return ""
	}
	return prefix
}

// under reports whether path is prefix or lies below it, by whole segments.
func under(path, prefix string) bool {
	return path == prefix || (strings.HasPrefix(path, prefix) && path[len(prefix)] == '/')
}

// mountSplit returns SCRIPT_NAME and PATH_INFO for a request path: the mount prefix is
// scriptName when set, else the front end's (see FrontScriptName).
func mountSplit(scriptName string, front Env, path string) (script, pathInfo string, ok bool) {
	prefix := strings.TrimSuffix(scriptName, "/")
	if scriptName == "" {
		prefix = frontPrefix(front, path)
	}
	if prefix == "" {
		return "", path, true
	}
	if !under(path, prefix) {
		return "", "", false
	}
	return prefix, path[len(prefix):], true
}

// addFrontVars adds the front end's own variables (REMOTE_ADDR, HTTPS, SERVER_NAME,
// DOCUMENT_ROOT and whatever its configuration adds), except those the proxy writes
// itself. A variable the front end repeated is sent once, with its last value: that is
// the one python-scgi would keep, and the one a later scgi_param means.
func addFrontVars(h *headerBuf, front Env) {
	const pairwiseMax = 64 // beyond this, a map keeps the work linear
	var last map[string]int
	if len(front) > pairwiseMax {
		last = make(map[string]int, len(front))
		for i, v := range front {
			last[v.Name] = i
		}
	}
	for i, v := range front {
		if controlled(v.Name) {
			continue
		}
		if last != nil {
			if last[v.Name] != i {
				continue
			}
		} else if front[i+1:].has(v.Name) {
			continue
		}
		h.add(v.Name, v.Value)
	}
}

func (e Env) has(name string) bool {
	for _, v := range e {
		if v.Name == name {
			return true
		}
	}
	return false
}

// buildEnv fills h with the SCGI request header for r and a body of contentLength bytes.
//
// Order: CONTENT_LENGTH (the spec wants it first), SCGI, then HTTP_COOKIE, so that a
// session-affinity server reading only the first bytes finds the session cookie; then the
// CGI variables; then the other HTTP_* variables in name order.
func buildEnv(h *headerBuf, r *http.Request, contentLength int64, scriptName string, front Env) error {
	h.reset()
	h.addInt("CONTENT_LENGTH", contentLength)
	h.add("SCGI", "1")
	if c, ok := r.Header["Cookie"]; ok && len(c) > 0 {
		h.addHeader("Cookie", c)
	}

	script, pathInfo, ok := mountSplit(scriptName, front, r.URL.Path)
	if !ok {
		return errNotMounted
	}
	h.add("REQUEST_METHOD", r.Method)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	h.add("REQUEST_URI", uri)
	h.add("QUERY_STRING", r.URL.RawQuery)
	h.add("CONTENT_TYPE", headerValue(r.Header, "Content-Type"))
	h.add("SCRIPT_NAME", script)
	h.add("PATH_INFO", pathInfo)

	addFrontVars(h, front)
	has := front.has
	// What a front end would have said, derived from the request when it came over HTTP.
	if !has("SERVER_PROTOCOL") {
		proto := r.Proto
		if proto == "" {
			proto = "HTTP/1.1"
		}
		h.add("SERVER_PROTOCOL", proto)
	}
	if !has("REQUEST_SCHEME") {
		if r.TLS != nil {
			h.add("REQUEST_SCHEME", "https")
		} else {
			h.add("REQUEST_SCHEME", "http")
		}
	}
	if r.TLS != nil && !has("HTTPS") {
		h.add("HTTPS", "on")
	}
	if !has("REMOTE_ADDR") {
		host, port := splitHostPort(r.RemoteAddr)
		h.add("REMOTE_ADDR", host)
		if port != "" && !has("REMOTE_PORT") {
			h.add("REMOTE_PORT", port)
		}
	}
	if !has("SERVER_NAME") || !has("SERVER_PORT") {
		name, port, tcpPort := serverNamePort(r)
		if !has("SERVER_NAME") {
			h.add("SERVER_NAME", name)
		}
		if !has("SERVER_PORT") {
			if port == "" {
				h.addInt("SERVER_PORT", int64(tcpPort))
			} else {
				h.add("SERVER_PORT", port)
			}
		}
	}

	if r.Host != "" {
		h.addHeader("Host", []string{r.Host})
	}
	var keysArr [32]string
	keys := keysArr[:0]
	for k := range r.Header {
		if k != "Cookie" && k != "Host" && !skipHeader(k) && !connectionListed(r.Header, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.addHeader(k, r.Header[k])
	}
	return nil
}

// headerValue is Header.Get without canonicalising the key (it is already canonical).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// connectionListed reports whether the Connection header names k as hop-by-hop.
func connectionListed(h http.Header, k string) bool {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), k) {
				return true
			}
		}
	}
	return false
}

// splitHostPort is net.SplitHostPort for a host that may lack a port, without the
// allocation of an error in that common case.
func splitHostPort(hostport string) (host, port string) {
	colon := strings.LastIndexByte(hostport, ':')
	if colon < 0 || colon < strings.LastIndexByte(hostport, ']') {
		return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return host, port
}

// serverNamePort derives SERVER_NAME from the Host the client asked for and SERVER_PORT
// from the local address that accepted the connection (as nginx's $server_port does),
// falling back to the Host's port and then to the scheme's default.
func serverNamePort(r *http.Request) (name, port string, tcpPort int) {
	name, port = splitHostPort(r.Host)
	switch la := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return name, "", la.Port
	case net.Addr:
		if _, p, err := net.SplitHostPort(la.String()); err == nil {
			port = p
		}
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	return name, port, 0
}
