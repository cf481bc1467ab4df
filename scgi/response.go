package scgi

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bufferSize is the response buffer, as net/http's: a response that fits and ends
// with the handler is sent in one write with an exact Content-Length; a larger one is
// streamed. Its first bytes decide the sniffed Content-Type.
const bufferSize = 4096

var errHandlerDone = errors.New("scgi: ResponseWriter used after the handler returned")

// errShortResponse is a handler's bug, unlike a write error (the client went away).
var errShortResponse = errors.New("scgi: response shorter than its Content-Length")

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferSize) }}

// Header keys that never reach the CGI response: Status is the response's first line,
// and the body is delimited by the end of the connection, so Transfer-Encoding would
// be false (a handler writes plain bytes, as with net/http). Bodiless statuses also
// drop the headers net/http drops for them.
var (
	excludeAlways = map[string]bool{"Status": true, "Transfer-Encoding": true}
	excludeNoBody = map[string]bool{"Status": true, "Transfer-Encoding": true, "Content-Length": true}
	exclude304    = map[string]bool{"Status": true, "Transfer-Encoding": true, "Content-Length": true, "Content-Type": true}
)

// response is the http.ResponseWriter of a request: it writes the CGI response
// ("Status: 200 OK", the headers, a blank line, the body) through a buffer, and
// implements http.Flusher and the methods http.ResponseController looks for.
type response struct {
	c      *conn
	req    *http.Request
	isHEAD bool

	handlerHeader http.Header // what Header returns
	calledHeader  bool
	header        http.Header // the headers as of WriteHeader, which are sent

	bw            *bufio.Writer // buffers the body; flushes through chunkWriter
	status        int
	wroteHeader   bool // status chosen
	headerSent    bool // CGI header written to the connection
	handlerDone   bool
	released      bool
	written       int64 // body bytes the handler wrote
	contentLength int64 // declared by the handler, or -1
	scratch       [512]byte
}

func newResponse(c *conn, req *http.Request) *response {
	w := &response{c: c, req: req, isHEAD: req.Method == http.MethodHead, contentLength: -1}
	w.bw = writerPool.Get().(*bufio.Writer)
	w.bw.Reset((*chunkWriter)(w))
	return w
}

// release returns the buffer; any later use of the writer fails.
func (w *response) release() {
	w.released = true
	w.bw.Reset(nil)
	writerPool.Put(w.bw)
	w.bw = nil
}

func (w *response) Header() http.Header {
	if w.handlerHeader == nil {
		w.handlerHeader = make(http.Header)
	}
	w.calledHeader = true
	return w.handlerHeader
}

// WriteHeader chooses the status, as net/http's: only the first call counts, and the
// headers as they are now are the ones sent. Informational (1xx) statuses are
// dropped: CGI cannot relay an interim response.
func (w *response) WriteHeader(code int) {
	if w.released {
		return
	}
	if w.wroteHeader {
		w.c.srv.logger().Warn("scgi: superfluous WriteHeader call", "uri", w.req.RequestURI, "code", code, "first", w.status)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.calledHeader {
		w.header = w.handlerHeader.Clone()
	} else {
		w.header = http.Header{}
	}
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, ok := parseContentLength(strings.TrimSpace(cl)); ok {
			w.contentLength = n
		} else {
			w.c.srv.logger().Warn("scgi: handler set an invalid Content-Length", "uri", w.req.RequestURI, "value", cl)
			w.header.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if err := w.beforeWrite(len(p)); err != nil || len(p) == 0 {
		return 0, err
	}
	return w.bw.Write(p)
}

func (w *response) WriteString(s string) (int, error) {
	if err := w.beforeWrite(len(s)); err != nil || len(s) == 0 {
		return 0, err
	}
	return w.bw.WriteString(s)
}

func (w *response) beforeWrite(n int) error {
	if w.released {
		return errHandlerDone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return nil
	}
	if !bodyAllowed(w.status) {
		return http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(n) > w.contentLength {
		return http.ErrContentLength
	}
	w.written += int64(n)
	return nil
}

// Flush sends the headers and everything written so far to the client.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush returning the write error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.released {
		return errHandlerDone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent && w.bw.Buffered() == 0 {
		if _, err := (*chunkWriter)(w).Write(nil); err != nil {
			return err
		}
	}
	return w.bw.Flush()
}

// SetReadDeadline and SetWriteDeadline replace the server's absolute read and write
// limits for this request (StallTimeout still applies); see http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.setReadLimit(t)
	return w.c.armRead() // now, in case a read is blocked in another goroutine
}

func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.setWriteLimit(t)
	return w.c.armWrite()
}

// EnableFullDuplex reports success: an SCGI connection always lets a handler go on
// reading the body after it has started the response.
func (w *response) EnableFullDuplex() error { return nil }

// finish completes the response after the handler returned. It fails if the client
// could not be written to or the handler wrote less than its Content-Length.
func (w *response) finish() error {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent && w.bw.Buffered() == 0 {
		if _, err := (*chunkWriter)(w).Write(nil); err != nil {
			return err
		}
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if w.contentLength >= 0 && w.written < w.contentLength && bodyAllowed(w.status) && !w.isHEAD {
		return fmt.Errorf("%w: handler wrote %d of the %d bytes its Content-Length declares", errShortResponse, w.written, w.contentLength)
	}
	return nil
}

// chunkWriter is what the body buffer flushes into. Its first call sends the CGI
// header, computed from the data at hand as net/http does: a sniffed Content-Type if
// the handler set none, and a Content-Length when the handler has already returned
// (so the whole body is in p).
type chunkWriter response

func (cw *chunkWriter) Write(p []byte) (int, error) {
	w := (*response)(cw)
	var err error
	switch {
	case !w.headerSent:
		w.headerSent = true
		hdr := w.appendHeader(w.scratch[:0], p)
		if w.isHEAD || len(p) == 0 {
			err = w.c.write(hdr)
		} else {
			err = w.c.write(hdr, p)
		}
	case w.isHEAD:
		// The front end sends no body for HEAD; the handler's writes are eaten.
	default:
		err = w.c.write(p)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// respHeaderBuf lets http.Header.WriteSubset append to a byte slice.
type respHeaderBuf struct{ b []byte }

func (h *respHeaderBuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
func (h *respHeaderBuf) WriteString(s string) (int, error) {
	h.b = append(h.b, s...)
	return len(s), nil
}

func (w *response) appendHeader(b []byte, p []byte) []byte {
	b = append(b, "Status: "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	if text := http.StatusText(w.status); text != "" {
		b = append(b, ' ')
		b = append(b, text...)
	}
	b = append(b, "\r\n"...)

	exclude := excludeAlways
	switch {
	case w.status == http.StatusNotModified:
		exclude = exclude304
	case !bodyAllowed(w.status):
		exclude = excludeNoBody
	}
	hb := respHeaderBuf{b}
	_ = w.header.WriteSubset(&hb, exclude) // respHeaderBuf cannot fail
	b = hb.b

	if bodyAllowed(w.status) {
		_, haveType := w.header["Content-Type"]
		if !haveType && w.header.Get("Content-Encoding") == "" && len(p) > 0 {
			b = append(b, "Content-Type: "...)
			b = append(b, http.DetectContentType(p)...)
			b = append(b, "\r\n"...)
		}
		if _, haveLength := w.header["Content-Length"]; w.handlerDone && !haveLength && (!w.isHEAD || len(p) > 0) {
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, int64(len(p)), 10)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// bodyAllowed reports whether a response with this status may have a body (RFC 9110
// section 6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
