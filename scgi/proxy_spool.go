package scgi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ErrLengthRequired reports a request body of unknown length (a chunked upload) while
// spooling is off (Proxy.MaxSpoolBytes < 0). SCGI needs a CONTENT_LENGTH up front. The
// proxy answers 411.
var ErrLengthRequired = errors.New("scgi: request body of unknown length (spooling is off)")

// ErrUploadTooLarge reports a request body of unknown length larger than
// Proxy.MaxSpoolBytes. The proxy answers 413.
var ErrUploadTooLarge = errors.New("scgi: request body of unknown length exceeds the spool limit")

// DefaultMaxSpoolBytes is the default bound on a spooled request body of unknown length.
const DefaultMaxSpoolBytes = 10 << 20

// DefaultBufferBodyBytes is the default Proxy.BufferBodyBytes: request bodies up to
// this size are read completely before a backend is dialled.
const DefaultBufferBodyBytes = 1 << 20

// spoolMemBytes is how much of a spooled body is kept in memory before it moves to a
// temporary file.
const spoolMemBytes = 256 << 10

// requestBody returns the body to forward and its exact length. A body of known length
// up to buffer bytes, and a body of unknown length (r.ContentLength == -1: a chunked
// upload, up to maxSpool bytes), is read completely first — in memory, then in a
// temporary file in dir — so that a slow client never holds a backend connection; a
// larger body of known length is streamed. Either way the client's reads are bounded
// by limits (nil: none). cleanup removes any temporary file.
func requestBody(w http.ResponseWriter, r *http.Request, limits *BodyLimits, buffer, maxSpool int64, dir string) (body io.Reader, n int64, cleanup func(), err error) {
	cleanup = func() {}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, cleanup, nil
	}
	var src io.Reader = r.Body
	if limits != nil {
		if rate := limits.start(time.Now()); rate != nil {
			src = &limitedBody{r: r.Body, rc: http.NewResponseController(w), rate: rate, remaining: r.ContentLength}
		}
	}
	switch {
	case r.ContentLength > 0 && r.ContentLength > buffer:
		return src, r.ContentLength, cleanup, nil
	case r.ContentLength > 0:
		body, n, cleanup, err = spool(src, r.ContentLength, dir)
		if err == nil && n < r.ContentLength {
			cleanup()
			return nil, 0, func() {}, errClientBody{io.ErrUnexpectedEOF}
		}
		return body, n, cleanup, err
	case maxSpool < 0:
		return nil, 0, cleanup, ErrLengthRequired
	}
	body, n, cleanup, err = spool(src, maxSpool+1, dir)
	if err == nil && n > maxSpool {
		cleanup()
		return nil, 0, func() {}, fmt.Errorf("%w (%d bytes)", ErrUploadTooLarge, maxSpool)
	}
	return body, n, cleanup, err
}

// spool reads src up to max bytes: the first spoolMemBytes in memory, the rest in a
// temporary file in dir.
func spool(src io.Reader, max int64, dir string) (body io.Reader, n int64, cleanup func(), err error) {
	cleanup = func() {}
	var mem bytes.Buffer
	memLimit := min(max, spoolMemBytes)
	m, err := mem.ReadFrom(&clientBody{r: io.LimitReader(src, memLimit)})
	if err != nil {
		return nil, 0, cleanup, err
	}
	if m < memLimit || m == max {
		return bytes.NewReader(mem.Bytes()), m, cleanup, nil
	}
	f, err := os.CreateTemp(dir, "scgi-upload-*")
	if err != nil {
		return nil, 0, cleanup, fmt.Errorf("scgi: spooling request body: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	fail := func(err error) (io.Reader, int64, func(), error) {
		cleanup()
		return nil, 0, func() {}, err
	}
	if _, err := f.Write(mem.Bytes()); err != nil {
		return fail(fmt.Errorf("scgi: spooling request body: %w", err))
	}
	rest, err := io.Copy(f, &clientBody{r: io.LimitReader(src, max-m)})
	if err != nil {
		return fail(err) // errClientBody, or the file's write error
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("scgi: spooling request body: %w", err))
	}
	return f, m + rest, cleanup, nil
}

// limitedBody enforces BodyLimits on a request body read through net/http (or any
// server whose ResponseWriter supports read deadlines): each read gets the deadline
// the limits allow, and the deadline is lifted once the body is done, so that it
// cannot cut the connection's later reads.
type limitedBody struct {
	r         io.Reader
	rc        *http.ResponseController
	rate      *bodyRate
	remaining int64 // -1: unknown
	done      bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.done {
		return b.r.Read(p)
	}
	armed := b.rc.SetReadDeadline(b.rate.before(time.Now())) == nil
	n, err := b.r.Read(p)
	err = b.rate.after(time.Now(), n, err)
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	if err != nil || b.remaining == 0 {
		b.done = true
		if armed {
			// A body done reading lifts the deadline. A body cut off for slowness
			// keeps an expired one: the server would otherwise drain the rest of it
			// at the client's pace before the connection could close.
			t := time.Time{}
			if errors.Is(err, ErrBodyTooSlow) {
				t = time.Unix(1, 0)
			}
			_ = b.rc.SetReadDeadline(t)
		}
	}
	return n, err
}
