package scgi

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrBodyTooSlow reports a request body that arrived slower than BodyLimits allow: its
// average rate fell below MinRate after the grace period, or the whole body took longer
// than Timeout. The proxy answers 408; the connection is cut.
var ErrBodyTooSlow = errors.New("scgi: request body arrived too slowly")

// Default body limits, used where a BodyLimits field is zero.
const (
	// DefaultMinBodyRate is the least average rate, in bytes per second, at which a
	// request body must arrive once the grace period is over: a slow mobile link
	// sends 10 to 100 times that.
	DefaultMinBodyRate = 1024
	// DefaultBodyRateGrace is how long a body may wait before the rate is enforced.
	DefaultBodyRateGrace = 5 * time.Second
	// DefaultBodyTimeout bounds the whole body, however fast it starts.
	DefaultBodyTimeout = 5 * time.Minute
)

// minBodyReadWait is the least time any single read may block: it only has to let a
// read that finds data waiting return it (Go fails a read at once when its deadline
// has passed, even with data in the socket buffer).
const minBodyReadWait = 10 * time.Millisecond

// BodyLimits bound how slowly a client may send a request body, so that a slow (or
// malicious) client is cut off instead of holding a connection and, behind a proxy, a
// Python worker. The rate is averaged over the time spent waiting for the client
// (blocked in reads), not over time the handler spends elsewhere, so a handler that
// reads slowly is never taken for a slow client. Each field's zero value means its
// default; a negative value means no limit.
type BodyLimits struct {
	// MinRate is the least average rate in bytes per second (default
	// DefaultMinBodyRate), enforced once Grace of waiting has passed.
	MinRate int64
	// Grace is how long the body may wait before MinRate applies (default
	// DefaultBodyRateGrace).
	Grace time.Duration
	// Timeout bounds the whole body, from its first read (default DefaultBodyTimeout).
	Timeout time.Duration
}

// bodyRate tracks one body against BodyLimits. It is not safe for concurrent use.
type bodyRate struct {
	minRate int64         // 0: none
	grace   time.Duration // of waiting, before minRate applies
	total   time.Time     // deadline for the whole body; zero: none
	waited  time.Duration // time spent blocked in reads so far
	n       int64         // bytes received so far
	limit   time.Time     // the deadline of the read in progress
	readAt  time.Time     // when the read in progress started
}

// start begins tracking a body at now; nil means no limit applies.
func (l BodyLimits) start(now time.Time) *bodyRate {
	r := &bodyRate{minRate: l.MinRate, grace: l.Grace}
	if r.minRate == 0 {
		r.minRate = DefaultMinBodyRate
	}
	if r.grace == 0 {
		r.grace = DefaultBodyRateGrace
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = DefaultBodyTimeout
	}
	if timeout > 0 {
		r.total = now.Add(timeout)
	}
	if r.minRate < 0 {
		r.minRate = 0
	}
	if r.minRate == 0 && r.total.IsZero() {
		return nil
	}
	return r
}

// before returns the deadline for a read starting at now: the whole body's deadline,
// or the moment at which the average rate over the time waited would drop below
// minRate, whichever comes first.
func (r *bodyRate) before(now time.Time) time.Time {
	r.readAt = now
	d := r.total
	if r.minRate > 0 {
		// The body may have waited max(grace, n/minRate) in all.
		allowed := max(r.grace, time.Duration(float64(r.n)/float64(r.minRate)*float64(time.Second)))
		rd := now.Add(max(allowed-r.waited, minBodyReadWait))
		if d.IsZero() || rd.Before(d) {
			d = rd
		}
	}
	r.limit = d
	return d
}

// after records a read that returned n bytes at now, and turns a timeout caused by
// these limits into ErrBodyTooSlow.
func (r *bodyRate) after(now time.Time, n int, err error) error {
	r.waited += now.Sub(r.readAt)
	r.n += int64(n)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && !now.Before(r.limit) {
		return fmt.Errorf("%w (%d bytes in %v of waiting): %w", ErrBodyTooSlow, r.n, r.waited.Round(time.Millisecond), err)
	}
	return err
}
