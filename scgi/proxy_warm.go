package scgi

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"time"
)

// DefaultWarmMaxAge is how long a connection dialled ahead waits for a request when
// Proxy.WarmMaxAge is zero.
const DefaultWarmMaxAge = 5 * time.Second

// errNothingSent marks a request whose header could not be written at all: the
// backend received none of it, so it may be sent again on another connection.
var errNothingSent = errors.New("scgi: nothing of the request was sent")

// warmConn is a connection dialled ahead of a request, waiting in its backend's list.
type warmConn struct {
	conn  net.Conn
	timer *time.Timer // closes it at WarmMaxAge
}

// warmWant returns how many connections to keep dialled ahead per backend: WarmConns,
// and with a connection cap one fewer than the cap at most, so that a worker with as
// many children as the cap always has one left for whoever else connects to it.
func (p *Proxy) warmWant() int {
	n := p.WarmConns
	if m := p.MaxConnsPerBackend; m > 0 && n > m-1 {
		n = m - 1
	}
	return max(n, 0)
}

// takeWarm returns a live connection dialled ahead to b, or nil, starting with wc (the
// one acquire took with the slot) when it is not nil. While one is being dialled it
// waits for it rather than dial another: the worker accepts connections in order, and
// one dialled ahead, accepted before the request's own, would take the child the
// request needs. A connection whose peer has closed (the child or the whole worker
// went away while it waited) is discarded: nothing was sent on it.
func (p *Proxy) takeWarm(ctx context.Context, b *backend, wc *warmConn) net.Conn {
	for {
		if wc == nil {
			p.pool.mu.Lock()
			if len(b.warm) == 0 {
				if b.dialling == 0 {
					p.pool.mu.Unlock()
					return nil
				}
				if p.pool.freed == nil {
					p.pool.freed = make(chan struct{})
				}
				freed := p.pool.freed
				p.pool.mu.Unlock()
				select {
				case <-freed: // dialWarm signals when it is done
				case <-ctx.Done():
					return nil
				}
				continue
			}
			wc = b.warm[0]
			b.warm = slices.Delete(b.warm, 0, 1)
			p.pool.mu.Unlock()
		}
		wc.timer.Stop()
		if idle(wc.conn) {
			p.pool.mu.Lock()
			b.warmUsed++
			p.pool.mu.Unlock()
			return wc.conn
		}
		wc.conn.Close()
		wc = nil
	}
}

// started notes that a request to b has started, at now: two requests less than
// WarmMaxAge apart mean traffic that connections dialled ahead will serve. An
// isolated request dials nothing ahead, since a connection that is never used must
// be closed empty, which python-scgi's child takes for a broken request and dies of.
func (p *Proxy) started(b *backend, now time.Time) {
	p.pool.mu.Lock()
	b.busy = !b.lastStart.IsZero() && now.Sub(b.lastStart) < orDefault(p.WarmMaxAge, DefaultWarmMaxAge)
	b.lastStart = now
	p.pool.mu.Unlock()
}

// refill dials connections ahead to b in the background while requests keep coming,
// up to warmWant and within MaxConnsPerBackend counting the requests in flight; not
// to a backend that rests or whose last request failed, nor after Close.
func (p *Proxy) refill(b *backend) {
	want := p.warmWant()
	if want == 0 {
		return
	}
	p.pool.mu.Lock()
	n := 0
	for b.busy && !p.pool.closed && b.consecutive == 0 && !time.Now().Before(b.restedUntil) &&
		len(b.warm)+b.dialling < want &&
		(p.MaxConnsPerBackend <= 0 || b.inFlight+len(b.warm)+b.dialling < p.MaxConnsPerBackend) {
		b.dialling++
		n++
	}
	p.pool.mu.Unlock()
	for range n {
		go p.dialWarm(b)
	}
}

// dialWarm dials one connection ahead to b and puts it in b's list. A failed dial
// counts for nothing: the backend is judged by the requests that follow.
func (p *Proxy) dialWarm(b *backend) {
	conn, err := dialBackend(context.Background(), b.network, b.address, orDefault(p.DialTimeout, DefaultDialTimeout))
	p.pool.mu.Lock()
	b.dialling--
	// Kept unless the proxy closed or the backend rested meanwhile.
	if err == nil && !p.pool.closed && !time.Now().Before(b.restedUntil) {
		wc := &warmConn{conn: conn}
		wc.timer = time.AfterFunc(orDefault(p.WarmMaxAge, DefaultWarmMaxAge), func() { p.expireWarm(b, wc) })
		b.warm = append(b.warm, wc)
		conn = nil
	}
	p.pool.signalLocked() // a request waiting at the cap may take it
	p.pool.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// expireWarm closes wc if it is still waiting: after a python-scgi worker reloads
// (SIGHUP), the child holding it would serve its request with the old code.
func (p *Proxy) expireWarm(b *backend, wc *warmConn) {
	p.pool.mu.Lock()
	i := slices.Index(b.warm, wc)
	if i >= 0 {
		b.warm = slices.Delete(b.warm, i, i+1)
	}
	p.pool.mu.Unlock()
	if i >= 0 {
		wc.conn.Close()
	}
}

// dropWarmLocked removes b's waiting connections and returns them to be closed
// outside the lock.
func dropWarmLocked(b *backend) []*warmConn {
	out := b.warm
	b.warm = nil
	for _, wc := range out {
		wc.timer.Stop()
	}
	return out
}

func closeWarm(conns []*warmConn) {
	for _, wc := range conns {
		wc.conn.Close()
	}
}

// Close closes the connections dialled ahead (Proxy.WarmConns) and stops dialling
// more. Requests in flight finish; later ones are still served, each on a connection
// of its own. Each connection closed costs the python-scgi child that was waiting on
// it: the child exits, as it does for any connection that ends before a request, and
// the worker forks another when it needs one. Close always returns nil.
func (p *Proxy) Close() error {
	p.pool.mu.Lock()
	p.pool.closed = true
	var conns []*warmConn
	for _, b := range p.pool.backends {
		conns = append(conns, dropWarmLocked(b)...)
	}
	p.pool.mu.Unlock()
	closeWarm(conns)
	return nil
}

// idle reports whether nothing has happened on conn since it was dialled: no data and
// no end from the peer. It peeks without waiting.
func idle(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var buf [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && alive
}
