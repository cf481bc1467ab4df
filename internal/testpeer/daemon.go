package testpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is a server a test harness runs in the foreground for one test (nginx,
// Apache, lighttpd): started in its own process group, its output collected, stopped
// with SIGTERM and, if that does not end it, killed with all its processes.
type Daemon struct {
	// Name names the server in errors ("nginx").
	Name string
	// Output is what the process wrote to stdout and stderr.
	Output *Output

	t       testing.TB
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped sync.Once
}

// StartDaemon starts cmd (its Stdout, Stderr and SysProcAttr are set here).
func StartDaemon(t testing.TB, name string, cmd *exec.Cmd) (*Daemon, error) {
	d := &Daemon{Name: name, Output: &Output{}, t: t, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.Output, d.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// PID returns the process id of the server's main process.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// WaitReady polls until ready returns nil, the process exits, or limit passes. A
// ready function that sees that the server will not come up returns an error
// wrapping ErrStartup, which WaitReady returns at once.
func (d *Daemon) WaitReady(limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited during startup", d.Name)
		default:
		}
		if err = ready(); err == nil || errors.Is(err, ErrStartup) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v: %w", d.Name, limit, err)
}

// ErrStartup is wrapped by a ready function's error that means the server will not
// come up (a configuration error in its log): WaitReady stops waiting.
var ErrStartup = errors.New("startup failed")

// LogReady returns a ready function for WaitReady: the file at logPath contains line,
// and addr accepts TCP connections.
func LogReady(logPath, line, addr string) func() error {
	return func() error {
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), line) {
			return fmt.Errorf("%s does not say %q yet", logPath, line)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// Stop sends SIGTERM and waits for the process to exit; after timeout it kills the
// whole process group and fails the test. Calling it again does nothing.
func (d *Daemon) Stop(timeout time.Duration) {
	d.stopped.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		select {
		case <-d.exited:
		case <-ctx.Done():
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
			d.t.Errorf("%s did not stop on SIGTERM within %v; killed", d.Name, timeout)
		}
	})
}

// OnFreePort calls start with a free loopback address (FreeLoopbackAddr) until it
// succeeds or fails for another reason than "Address already in use" (another
// process took the port between its release and the server's bind), three times at
// most, and fails t with the last error.
func OnFreePort[T any](t testing.TB, name string, start func(addr string) (T, error)) T {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := FreeLoopbackAddr()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		inst, err := start(addr)
		if err == nil {
			return inst
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("%s: %v", name, lastErr)
	var zero T
	return zero
}
