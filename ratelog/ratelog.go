// Package ratelog keeps hostile input from flooding a log: a slog.Handler that
// rate-limits the records that report hostile input, per kind, and truncates long
// values.
//
// A record reports hostile input when it carries the attribute Key (hostile=KIND),
// directly or through Logger.With. Of those, each kind passes Burst records per
// Interval; the others are counted and dropped, and the next record of the kind that
// passes carries suppressed=N, the number dropped since the last one written. Their
// string values are cut to MaxValue bytes. Other records pass unchanged but for
// string values longer than MaxOtherValue, which are cut too: a log line must not
// grow with what a client sends.
package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Key is the attribute naming the kind of hostile input a record reports, e.g.
// slog.Warn("...", ratelog.Key, "cookie", ...).
const Key = "hostile"

// Options configures a Handler. Zero fields take the defaults.
type Options struct {
	// Interval is the window of the rate limit (default 10s).
	Interval time.Duration
	// Burst is the number of records of one kind written per Interval (default 5).
	Burst int
	// MaxValue bounds each string value of a hostile-input record, in bytes
	// (default 200).
	MaxValue int
	// MaxOtherValue bounds each string value of the other records (default 4096).
	MaxOtherValue int
}

// Handler is the rate-limiting, truncating slog.Handler.
type Handler struct {
	next  slog.Handler
	opts  Options
	kind  string // the kind set by WithAttrs, if any
	group bool   // WithGroup was called: attributes added later are not top level
	state *state
	now   func() time.Time // for tests
}

type state struct {
	mu    sync.Mutex
	kinds map[string]*window
}

type window struct {
	start      time.Time
	written    int
	suppressed int
}

// New returns a Handler that writes to next.
func New(next slog.Handler, opts Options) *Handler {
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.MaxValue <= 0 {
		opts.MaxValue = 200
	}
	if opts.MaxOtherValue <= 0 {
		opts.MaxOtherValue = 4096
	}
	return &Handler{next: next, opts: opts, state: &state{kinds: map[string]*window{}}, now: time.Now}
}

// Enabled is next's.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle writes r to next, unless it reports hostile input of a kind that has used
// its Burst in this Interval.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	kind := h.kind
	if kind == "" && !h.group {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == Key {
				kind = a.Value.String()
				return false
			}
			return true
		})
	}
	limit := h.opts.MaxOtherValue
	suppressed := 0
	if kind != "" {
		limit = h.opts.MaxValue
		var ok bool
		if suppressed, ok = h.admit(kind); !ok {
			return nil
		}
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(truncate(a, limit))
		return true
	})
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return h.next.Handle(ctx, out)
}

// admit counts a record of kind, and reports whether it may be written and how many
// were dropped before it.
func (h *Handler) admit(kind string) (suppressed int, ok bool) {
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	now := h.now()
	w := s.kinds[kind]
	if w == nil {
		w = &window{start: now}
		s.kinds[kind] = w
	}
	if now.Sub(w.start) >= h.opts.Interval {
		w.start, w.written = now, 0
	}
	if w.written >= h.opts.Burst {
		w.suppressed++
		return 0, false
	}
	w.written++
	suppressed, w.suppressed = w.suppressed, 0
	return suppressed, true
}

// truncate cuts a's string value (in groups too) to limit bytes.
func truncate(a slog.Attr, limit int) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); len(s) > limit {
			return slog.String(a.Key, s[:limit]+fmt.Sprintf("...(%d bytes)", len(s)))
		}
	case slog.KindGroup:
		attrs := a.Value.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = truncate(g, limit)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny, slog.KindLogValuer:
		if v := a.Value.Resolve(); v.Kind() == slog.KindString || v.Kind() == slog.KindGroup {
			return truncate(slog.Attr{Key: a.Key, Value: v}, limit)
		} else if err, ok := v.Any().(error); ok {
			return truncate(slog.String(a.Key, err.Error()), limit)
		}
	}
	return a
}

// WithAttrs returns a Handler whose records carry attrs; hostile=KIND among them
// makes every record of the result report hostile input of that kind.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	limit := h.opts.MaxOtherValue
	if !h.group {
		for _, a := range attrs {
			if a.Key == Key {
				h2.kind = a.Value.String()
				limit = h.opts.MaxValue
			}
		}
	}
	cut := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cut[i] = truncate(a, limit)
	}
	h2.next = h.next.WithAttrs(cut)
	return &h2
}

// WithGroup returns a Handler that puts the attributes that follow in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.next = h.next.WithGroup(name)
	h2.group = h.group || name != ""
	return &h2
}
