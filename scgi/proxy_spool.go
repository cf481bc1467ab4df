package scgi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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

// spoolMemBytes is how much of a spooled body is kept in memory before it moves to a
// temporary file.
const spoolMemBytes = 256 << 10

// requestBody returns the body to forward and its exact length. A body of unknown length
// (r.ContentLength == -1: a chunked upload) is spooled, up to maxSpool bytes, first in
// memory and then in a temporary file in dir, to learn its length; cleanup removes the
// file.
func requestBody(r *http.Request, maxSpool int64, dir string) (body io.Reader, n int64, cleanup func(), err error) {
	cleanup = func() {}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, cleanup, nil
	}
	if r.ContentLength > 0 {
		return r.Body, r.ContentLength, cleanup, nil
	}
	if maxSpool < 0 {
		return nil, 0, cleanup, ErrLengthRequired
	}
	var mem bytes.Buffer
	memLimit := min(maxSpool, spoolMemBytes)
	m, err := mem.ReadFrom(io.LimitReader(r.Body, memLimit+1))
	if err != nil {
		return nil, 0, cleanup, errClientBody{err}
	}
	if m <= memLimit {
		return bytes.NewReader(mem.Bytes()), m, cleanup, nil
	}
	if m > maxSpool {
		return nil, 0, cleanup, fmt.Errorf("%w (%d bytes)", ErrUploadTooLarge, maxSpool)
	}
	f, err := os.CreateTemp(dir, "scgi-upload-*")
	if err != nil {
		return nil, 0, cleanup, fmt.Errorf("scgi: spooling request body: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	if _, err := f.Write(mem.Bytes()); err != nil {
		cleanup()
		return nil, 0, func() {}, fmt.Errorf("scgi: spooling request body: %w", err)
	}
	rest, err := io.Copy(f, &clientBody{r: io.LimitReader(r.Body, maxSpool-m+1)})
	if err != nil {
		cleanup()
		return nil, 0, func() {}, err // errClientBody, or the file's write error
	}
	n = m + rest
	if n > maxSpool {
		cleanup()
		return nil, 0, func() {}, fmt.Errorf("%w (%d bytes)", ErrUploadTooLarge, maxSpool)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, func() {}, fmt.Errorf("scgi: spooling request body: %w", err)
	}
	return f, n, cleanup, nil
}
