package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// RequestIDHeader carries a request's id. The gateway keeps the one a request arrives
// with when it is valid (see RequestID) and makes one otherwise; it sets it on the
// request, so that Go handlers read it with RequestID and Python workers receive it as
// HTTP_X_REQUEST_ID, on the response, and in the request log (request_id).
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLength bounds an incoming request id; a longer one is replaced.
const MaxRequestIDLength = 128

// RequestID returns the id of a request the gateway routed: the X-Request-ID it
// arrived with, when that was 1 to MaxRequestIDLength characters of letters, digits
// and "-_.:+/=@" (a UUID, nginx's $request_id, a trace id), else the 32 hex digits
// the gateway made. For a request that did not pass through a gateway it returns the
// header if valid, else "".
func RequestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); validRequestID(id) {
		return id
	}
	return ""
}

// validRequestID reports whether id may be passed on as it is: to a log line, a
// response header and the Python side's environment, where a control character, a
// space or a quote could forge a field.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits as 32 hex digits, the form of nginx's
// $request_id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24)
	return hex.EncodeToString(b[:])
}

// assignRequestID gives r its id (the valid incoming one, or a new one), on the
// request for the handler and the Python side, and on the response.
func assignRequestID(w http.ResponseWriter, r *http.Request) string {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	id := r.Header.Get(RequestIDHeader)
	if !validRequestID(id) || len(r.Header.Values(RequestIDHeader)) > 1 {
		id = newRequestID()
		r.Header.Set(RequestIDHeader, id)
	}
	w.Header().Set(RequestIDHeader, id)
	return id
}
