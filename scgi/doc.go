// Package scgi speaks SCGI on both sides of a gateway: a server that runs Go
// http.Handlers behind a front end (nginx scgi_pass, Apache mod_scgi, lighttpd), and
// a reverse proxy that forwards requests to SCGI backends such as python-scgi
// workers running a Quixote application.
//
// # Protocol
//
// SCGI (python-scgi's doc/protocol.txt) carries one request per connection: a
// netstring "LEN:" + header + "," whose header is a sequence of NUL-terminated
// name/value pairs (CGI variables), then exactly CONTENT_LENGTH bytes of body. The
// response is CGI-style: header lines ending in CRLF with a "Status: 200 OK" line, a
// blank line, the body; the end of the response is the end of the connection.
//
// # Server
//
// Serve and Server have the shape of net/http/fcgi.Serve and http.Server: handlers
// get an ordinary *http.Request (see RequestFromEnv for how each field is derived
// from the SCGI variables) and write through an ordinary http.ResponseWriter.
//
// Framing is checked strictly (see ReadEnv): the netstring length has no leading
// zeros and is bounded by MaxHeaderBytes before any of the header is read;
// CONTENT_LENGTH comes first and is all digits; SCGI=1 is present; the trailing comma
// is there. The specification forbids repeated names, but nginx sends one HTTP_*
// variable per request header line, so a client's two Cookie lines arrive as two
// HTTP_COOKIE variables. The server accepts repeated HTTP_* names and keeps them as
// repeated header values, which is exactly what net/http gives a handler for such a
// client: Header["Cookie"] has both lines and r.Cookies() returns the cookies of
// both. A repeated CONTENT_LENGTH, SCGI, HTTP_HOST, HTTP_CONTENT_LENGTH or any other
// non-HTTP_* variable is refused: two lengths are a request smuggling attempt. The
// raw variables stay available in wire order, repeats included (RequestEnv), and as
// a CGI-style map in which repeated headers are combined per RFC 3875 (ProcessEnv;
// python-scgi instead keeps only the last of them).
//
// A request that breaks the framing is answered "Status: 400 Bad Request" (431 for an
// oversized header) and logged; it never reaches the handler. The body reads exactly
// CONTENT_LENGTH bytes: a body that ends early is an error wrapping
// io.ErrUnexpectedEOF on Read, never a short body or a hang. Body bytes a handler
// leaves unread are drained (for a bounded time) after the response, so that the
// front end reads the whole response before the connection closes.
//
// Responses are buffered like net/http's: a small response that the handler
// finishes is sent in one write with a Content-Length, a larger one is streamed, and
// Flush (http.Flusher, http.ResponseController) pushes what was written to the
// socket at once. A missing Content-Type is sniffed with http.DetectContentType. The
// body of a HEAD response is discarded. Informational (1xx) statuses and trailers
// cannot be expressed in CGI and are dropped, and Hijack is not supported. nginx
// buffers upstream responses unless told otherwise: a streaming handler sets the
// header "X-Accel-Buffering: no" (or the site sets scgi_buffering off).
//
// Every connection runs on its own goroutine with deadlines from the Server's
// timeouts: ReadHeaderTimeout bounds the header, StallTimeout bounds any single read
// or write, and ReadTimeout, WriteTimeout and HandlerTimeout are available as in
// net/http. A panicking handler is answered with 500 if nothing was sent yet (else
// the connection is cut), logged, and the server goes on; http.ErrAbortHandler
// aborts silently. Shutdown stops accepting and waits for the requests in flight.
//
// # Reverse proxy
//
// (This section describes the proxy half of the package.)
package scgi
