package gateway

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The request log of a busy gateway is one record per request. Written one by one,
// each costs a write(2) on the request's path and wakes the log's reader (journald,
// a pipe to a log shipper) once per request; batched, the records of a few
// milliseconds go out in one write. Every other record is written at once, after the
// batched ones before it, so that the log keeps its order and a warning or an error
// is never late.
const (
	// logFlushDelay is how long a request record may wait in the buffer.
	logFlushDelay = 10 * time.Millisecond
	// logBufferMax bounds the buffer: a record that fills it is written at once,
	// by the request that logs it (nothing is dropped).
	logBufferMax = 64 << 10
)

// logBuffer batches writes to w: Write appends to the buffer and has it written at
// most logFlushDelay later; Flush writes it now. Writes to w are serialised and keep
// the order of the Writes. Close writes what is left, and Writes after it go straight
// to w.
type logBuffer struct {
	w     io.Writer
	delay time.Duration

	wmu sync.Mutex // held while writing to w, so that batches keep their order

	mu     sync.Mutex // guards the fields below
	buf    []byte     // records not yet written
	spare  []byte     // the previous batch's memory, for the next
	timer  *time.Timer
	closed bool
}

func newLogBuffer(w io.Writer) *logBuffer {
	return &logBuffer{w: w, delay: logFlushDelay}
}

// Write buffers p (a whole record: slog's handlers write each record in one call).
// The write's error, if any, is not reported: slog ignores a handler's errors.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= logBufferMax
	if !full && b.timer == nil {
		b.timer = time.AfterFunc(b.delay, func() { _ = b.Flush() })
	}
	b.mu.Unlock()
	if full {
		return len(p), b.Flush()
	}
	return len(p), nil
}

// Flush writes the buffered records now.
func (b *logBuffer) Flush() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.flushLocked(false)
}

// Close writes the buffered records; later Writes go straight to w.
func (b *logBuffer) Close() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.flushLocked(true)
}

// flushLocked writes the buffer with wmu held, and marks b closed if close is true.
func (b *logBuffer) flushLocked(close bool) error {
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.spare = nil
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.closed = b.closed || close
	b.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	_, err := b.w.Write(out)
	if cap(out) <= 2*logBufferMax {
		b.mu.Lock()
		b.spare = out[:0]
		b.mu.Unlock()
	}
	return err
}

// flushingHandler writes every record but the request log's at once: after h has
// formatted a record into buf, anything other than an Info "request" record flushes
// buf.
type flushingHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level != slog.LevelInfo || r.Message != "request" {
		if ferr := h.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}
