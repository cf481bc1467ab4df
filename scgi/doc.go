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
// is there. The specification forbids repeated names, but front ends send them, and
// the server follows what the front end's user means, which is also what python-scgi
// (a dict, the last value winning) makes of them:
//
//   - Repeated HTTP_* names are a client's repeated header lines: nginx sends one
//     HTTP_* variable per line, so a client's two Cookie lines arrive as two
//     HTTP_COOKIE variables. They stay repeated header values, exactly what net/http
//     gives a handler for such a client: Header["Cookie"] has both lines and
//     r.Cookies() returns the cookies of both.
//   - Any other repeated name comes from the front end's configuration, and the last
//     value counts. nginx sends every scgi_param, so `scgi_param HTTP_HOST $http_host;`
//     written after `include scgi_params;` (whose Debian version sends HTTP_HOST $host,
//     without the port) sends HTTP_HOST twice, and the user means the second: Host is
//     then the client's host with its port. nginx refuses a client's second Host line
//     itself, so HTTP_HOST is such a setting, never two header lines. The same holds
//     for HTTPS, SERVER_PORT, SCRIPT_NAME, REMOTE_ADDR or any variable set twice.
//   - CONTENT_LENGTH (the framing) and HTTP_CONTENT_LENGTH never repeat: two lengths
//     are a request smuggling attempt, answered 400. SCGI may repeat only as "1".
//
// The raw variables stay available in wire order, repeats included (RequestEnv), and as
// a CGI-style map (ProcessEnv) in which repeated header lines are combined per RFC 3875
// and other repeats keep their last value; Env.Get returns the last value too.
//
// A request that breaks the framing is answered "Status: 400 Bad Request" (431 for an
// oversized header) and logged; it never reaches the handler. The body reads exactly
// CONTENT_LENGTH bytes: a body that ends early is an error wrapping
// io.ErrUnexpectedEOF on Read, never a short body or a hang. Body bytes a handler
// leaves unread are drained (for a bounded time) after the response, so that the
// front end reads the whole response before the connection closes.
//
// A client that goes away is noticed while the handler runs, as net/http notices
// it: once the request has arrived whole (before the handler when it has no body or
// its body came with the header, as a small form does from nginx; when the handler
// has read the body to its end otherwise), the server reads on in the background
// from 5 ms on (a handler done sooner costs no such read), since an SCGI front end
// sends nothing more; the end of the input means
// the front end closed the connection because its client left (nginx does so unless
// scgi_ignore_client_abort is on), and the request's context is canceled. A front
// end that half-closes the connection after the request and still reads the
// response (lighttpd's "tcp-fin-propagate") needs Server.FrontEndHalfCloses.
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
// net/http. BodyLimits cut off a client that sends its body too slowly: by default
// its average rate must reach 1 KiB/s once it has waited 5 s, and the whole body must
// arrive within 5 minutes. The rate counts only the time spent waiting for the client,
// so a handler that reads slowly is never taken for a slow client; a slow body fails
// the handler's read with ErrBodyTooSlow. A panicking handler is answered with 500 if nothing was sent yet (else
// the connection is cut), logged, and the server goes on; http.ErrAbortHandler
// aborts silently. Shutdown stops accepting and waits for the requests in flight,
// including a connection Accept returned as the listener closed: behind a socket that
// outlives the process (systemd's), a restart loses no request.
//
// Every SCGI request costs the front end and the server a connection, so the
// transport matters: on one machine a UNIX socket (nginx: scgi_pass
// unix:/path;) carries about twice the requests per second of loopback TCP. For TCP,
// a listener from net.ListenConfig{KeepAlive: -1} spares the four setsockopt calls
// with which Go otherwise arms keep-alive probes on every accepted connection,
// probes a one-request connection never needs.
//
// # Reverse proxy
//
// Proxy is an http.Handler in the shape of httputil.ReverseProxy that forwards each
// request to one of a pool of SCGI backends ("host:port", "unix:/path" or "/path"; see
// NewProxy) and streams the CGI response back. It is meant to sit behind Serve, so that
// a front end's request reaches a python-scgi worker as if the front end had sent it
// there itself, but it serves plain HTTP requests as well.
//
// The environment is written as one netstring, in one write: CONTENT_LENGTH first (the
// specification's rule), SCGI=1, then HTTP_COOKIE (python-scgi's session-affinity
// server looks for the session cookie in the first 4 KiB only), then the CGI variables,
// then the other HTTP_* variables in name order. No name is sent twice, because
// python-scgi keeps only the last of repeated names: a request's repeated header lines
// are joined into one variable, with "; " for Cookie (RFC 6265) and ", " otherwise
// (RFC 9110). HTTP_* variables are rebuilt from r.Header, so changes made by Go
// middleware take effect; a header whose name contains "_" is dropped (X_User and
// X-User would both become HTTP_X_USER, letting a client forge a header that a front
// end vouches for), as are Proxy (httpoxy), Content-Length and Content-Type (sent as
// CONTENT_LENGTH and CONTENT_TYPE) and the hop-by-hop headers. A path or header
// containing a NUL byte cannot be expressed and is answered 400.
//
// When the request came in over SCGI (RequestEnv is not nil), every variable of the
// front end other than the framing, HTTP_*, the request line (REQUEST_METHOD,
// REQUEST_URI, QUERY_STRING, CONTENT_TYPE, taken from the request as forwarded) and
// the mount split is passed on unchanged: REMOTE_ADDR, REMOTE_PORT, HTTPS,
// REQUEST_SCHEME, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, DOCUMENT_ROOT and any
// variable the site's configuration adds. For a plain HTTP request they are derived
// as a front end would: REMOTE_ADDR and REMOTE_PORT from RemoteAddr, HTTPS=on and
// REQUEST_SCHEME=https when r.TLS is set, SERVER_PORT from the accepting socket.
//
// Quixote routes on PATH_INFO and takes its cookie path from SCRIPT_NAME, and nginx's
// default scgi_params send neither, so the proxy always sends both. With
// Proxy.ScriptName set, SCRIPT_NAME is that prefix and PATH_INFO the rest of the
// (decoded) request path; a path outside the prefix is answered 404, so the Proxy is
// mounted without http.StripPrefix. With ScriptName empty, the mount point is the one
// the front end declared (FrontScriptName): a SCRIPT_NAME the front end sent is kept
// when the path lies under it (nginx's `scgi_param SCRIPT_NAME /app;`), and otherwise
// SCRIPT_NAME is "" and PATH_INFO the whole path. Apache's mod_proxy_scgi sends
// SCRIPT_NAME = the whole decoded path and no PATH_INFO (unless the proxy-scgi-pathinfo
// variable is set, e.g. `SetEnvIf Request_URI . proxy-scgi-pathinfo`); a SCRIPT_NAME
// that equals the request path and comes without PATH_INFO is taken for that form and
// names no mount point, so Quixote gets SCRIPT_NAME "" and PATH_INFO the whole path
// (and sets its cookie for "/"), where it would otherwise serve its index for every
// URL. With proxy-scgi-pathinfo, Apache's split is a real mount and is kept.
//
// Of a variable the front end's configuration repeated, the proxy sends the last value
// once (see Server): the worker sees what it would have seen from the front end
// directly. In particular HTTP_HOST is the Host the Go side uses (r.Host), so a
// `scgi_param HTTP_HOST $http_host;` override reaches Quixote with the port, and its
// absolute redirects keep it.
//
// A python-scgi worker is a process that serves one request at a time, and Quixote
// reads the whole body before the page runs: a client sending its body slowly would
// hold a worker all along, and a few such clients all of them. So, as nginx buffers
// request bodies, a body of up to BufferBodyBytes (default 1 MiB) is read completely
// before a backend is dialled (up to 256 KiB in memory, then in a temporary file in
// SpoolDir): a slow client costs a goroutine, never a worker. A larger body is
// streamed, exactly CONTENT_LENGTH bytes, concurrently with the wait for the
// response, so that a worker refusing a large body early cannot deadlock against a
// proxy still sending it. Either way the client's reads are bounded by BodyLimits (the
// Server's, for a request it received; Proxy.BodyLimits otherwise, through
// http.ResponseController read deadlines): a client that breaks them is answered 408
// and its connection is cut, and a worker that was receiving a streamed body is let
// go. A body of unknown length (a chunked upload over HTTP/1.1; r.ContentLength == -1)
// is spooled the same way to learn its length, up to MaxSpoolBytes (default 10 MiB,
// else 413); a negative MaxSpoolBytes refuses such bodies with 411.
//
// The response head is read with bounds (1 MiB in all, 32 KiB a line): a "Status:"
// header with or without a reason phrase (status 200 to 599), or an NPH-style
// "HTTP/1.x" status line, or else 302 when there is a Location and 200 otherwise;
// line ends CRLF or LF. SERVER_PROTOCOL reaches the worker unchanged, so Quixote
// answers an HTTP/1.1 request of unknown length with "Transfer-Encoding: chunked"
// inside the SCGI stream; the proxy decodes that chunking, so the client never gets a
// doubly chunked body, and net/http (or Serve) frames the body again as the client's
// connection needs. A Content-Length from the worker is passed on and enforced. The
// body is copied as it arrives and flushed whenever no more of it is already buffered:
// a streaming worker's chunks reach the client at once, a short response costs one
// flush. No Content-Type is invented for a response without one. If the worker breaks
// off after the status went out (its connection ends before the Content-Length or the
// last chunk, or is reset), the proxy panics with http.ErrAbortHandler, which cuts the
// client's connection, so that a truncated page is never taken for a whole one. A
// response delimited by the end of the connection cannot be told from a truncated
// one; Quixote always frames its responses.
//
// Several backends form a pool: a request goes to the backend with the fewest
// requests in flight, ties broken round-robin. MaxConnsPerBackend caps the
// connections to each (set it to the worker's number of children); a request finding
// every backend at the cap waits up to QueueTimeout, then gets 503. Health is passive
// only: a backend is never probed, because a python-scgi child dies of a connection
// that sends no request. For the same reason a connection, once made, always carries a
// whole header: a client that goes away before the dial costs no connection, one that
// goes away during it still has its request sent (and the answer discarded, see below). MaxFails failures in a row (default 1, as nginx) rest a
// backend for FailTimeout (default 10 s); a failure is a dial error, or a connection
// closed or reset before any byte of response. Slowness is not a failure, and an
// answer ends the rest. As in nginx, a sole backend is never rested (Stats still
// reports it unhealthy): refusing every request for FailTimeout would only delay its
// recovery. Only a
// failed dial is retried, when nothing was sent, on another backend, and only for
// idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE): a POST is answered
// 502 even though its dial failed. Stats reports each backend's requests in flight,
// totals and health for metrics.
//
// WarmConns (off by default) keeps connections to each backend dialled ahead while
// requests keep coming, so that python-scgi's parent accepts them and hands them to
// a child before the request that uses them arrives. Each holds a waiting child;
// one not used within WarmMaxAge (default 5 s), and those waiting at Close or when
// their backend rests, are closed empty, which costs the worker that child (it
// exits and another is forked when needed). A dead one is discarded before use;
// a request is sent again on a fresh connection only when none of it went out.
//
// Failures are answered by ErrorHandler, by default with StatusForError: 408 for a
// body that arrived too slowly (ErrBodyTooSlow); 502 for a
// refused connection (on every backend tried), a worker that hung up or answered
// something other than CGI; 503 (ErrNoBackend) when every backend rests or stays at
// its cap; 504 (ErrResponseHeaderTimeout) when the response does not start within
// ResponseHeaderTimeout (default 60 s) after the request was sent. DialTimeout
// (default 5 s) bounds connecting. No timeout bounds a response body once it streams.
//
// A python-scgi worker does not notice that the client went away: it runs the page to
// its end, and Quixote saves the session just before it sends the response. So a
// request the proxy stops serving early — its client went away (its context was
// canceled), or its response did not start within ResponseHeaderTimeout — is not
// over for the proxy: it writes nothing more to the client (a timeout is answered 504
// at once, with a Content-Length, so that the client has the whole answer), but goes
// on reading the backend's response, discarding it, until the backend closes the
// connection, and only then returns from ServeHTTP and frees the backend's slot.
// Whatever the caller holds across the handler (the gateway's per-session ordering
// holds a session's turn) thus also covers the worker's own save, which would
// otherwise overwrite the next request's. The wait is bounded by DrainTimeout
// (default 60 s from the moment the proxy stopped serving the client) and DrainBytes
// (default 256 MiB); past either the connection is closed, and the request is logged
// at error level and counted in BackendStats.Abandoned: the worker may then still
// finish it after ServeHTTP returned. A negative DrainTimeout closes the connection at
// once. A streamed request body the client broke off is never waited for: the
// connection is cut, so that the worker cannot take a short body for a whole one. A
// Server's Shutdown waits for these requests like for any other in flight.
package scgi
