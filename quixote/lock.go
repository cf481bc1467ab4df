package quixote

import (
	"context"
	"errors"
	"sync"
)

// maxQueued bounds the requests of one session that may wait for it at once when
// the manager runs requests one at a time; one more is refused (503) rather than queued.
const maxQueued = 64

// errBusy reports a session with maxQueued requests already waiting for it.
var errBusy = errors.New("quixote: too many requests waiting for this session")

// keyedMutex is one mutex per key, made on first use and dropped when its last
// holder or waiter leaves, so it holds an entry only per key in use: no leak, and
// at most (requests in flight) entries.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	token chan struct{} // capacity 1: holding the lock is having put a token in
	refs  int           // holder plus waiters
}

// lock waits for the key's mutex, or until ctx is done. It returns the function
// that unlocks it.
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyLock)
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{token: make(chan struct{}, 1)}
		k.m[key] = l
	}
	if l.refs > maxQueued {
		k.mu.Unlock()
		return nil, errBusy
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.token <- struct{}{}:
		return func() {
			<-l.token
			k.release(key, l)
		}, nil
	case <-ctx.Done():
		k.release(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyedMutex) release(key string, l *keyLock) {
	k.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}

// len returns the number of keys in use.
func (k *keyedMutex) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
