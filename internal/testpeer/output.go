package testpeer

import (
	"bytes"
	"sync"
)

// Output collects a peer process's stdout or stderr. It is safe to write from the
// process's copying goroutines while a test reads it, which a bytes.Buffer is not.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
