package store

import (
	"context"
	"sync"
)

// Within one process, operations on one session file take turns. flock(2) locks
// belong to open file descriptions and would order them by themselves, but the
// POSIX locks that NFS uses to emulate flock belong to the process: two descriptors
// of one process never conflict, and closing either one drops the locks taken
// through both. So no two operations of a process have one session file open at
// once. The table is keyed by path and shared by every Directory of the process.
var pathLocks = struct {
	sync.Mutex
	m map[string]*pathLock
}{m: make(map[string]*pathLock)}

type pathLock struct {
	turn chan struct{} // holds a token while the path is in use
	refs int           // holders and waiters
}

// lockPath waits for the turn of this process on path, until ctx ends. The
// returned function ends the turn.
func lockPath(ctx context.Context, path string) (func(), error) {
	pathLocks.Lock()
	l := pathLocks.m[path]
	if l == nil {
		l = &pathLock{turn: make(chan struct{}, 1)}
		pathLocks.m[path] = l
	}
	l.refs++
	pathLocks.Unlock()
	select {
	case l.turn <- struct{}{}:
		return func() { <-l.turn; dropPathLock(path, l) }, nil
	default:
	}
	select {
	case l.turn <- struct{}{}:
		return func() { <-l.turn; dropPathLock(path, l) }, nil
	case <-ctx.Done():
		dropPathLock(path, l)
		return nil, ctx.Err()
	}
}

// tryLockPath takes the turn on path only if no operation of this process has it.
func tryLockPath(path string) (func(), bool) {
	pathLocks.Lock()
	defer pathLocks.Unlock()
	if pathLocks.m[path] != nil {
		return nil, false
	}
	l := &pathLock{turn: make(chan struct{}, 1), refs: 1}
	l.turn <- struct{}{}
	pathLocks.m[path] = l
	return func() { <-l.turn; dropPathLock(path, l) }, true
}

func dropPathLock(path string, l *pathLock) {
	pathLocks.Lock()
	l.refs--
	if l.refs == 0 {
		delete(pathLocks.m, path)
	}
	pathLocks.Unlock()
}
