package testhttp

import (
	"net"
	"sync"
	"sync/atomic"
)

// ClosingListener hands out its first connection only once Close has been called,
// which makes Accept return a connection while a server's Shutdown is closing the
// listener: the race a graceful shutdown must not lose a request to. Accepted is
// closed when that connection has been accepted (the client's request may then be
// sent); later Accepts fail with net.ErrClosed once Close is called.
type ClosingListener struct {
	net.Listener
	Accepted chan struct{}
	Closed   chan struct{}

	once  sync.Once
	first atomic.Bool
}

// NewClosingListener wraps l.
func NewClosingListener(l net.Listener) *ClosingListener {
	return &ClosingListener{Listener: l, Accepted: make(chan struct{}), Closed: make(chan struct{})}
}

func (l *ClosingListener) Accept() (net.Conn, error) {
	if l.first.Swap(true) {
		<-l.Closed
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	close(l.Accepted)
	<-l.Closed
	return c, err
}

func (l *ClosingListener) Close() error {
	l.once.Do(func() { close(l.Closed) })
	return l.Listener.Close()
}
