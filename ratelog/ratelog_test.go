package ratelog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTest(opts Options) (*slog.Logger, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}), opts)
	now := time.Unix(1795303038, 0)
	h.now = func() time.Time { return now }
	return slog.New(h), &buf, &now
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestRateLimitPerKind: each kind writes Burst records per Interval; the first one
// written after some were dropped says how many.
func TestRateLimitPerKind(t *testing.T) {
	log, buf, now := newTest(Options{Interval: 10 * time.Second, Burst: 3})
	for i := range 20 {
		log.Warn("bad cookie", Key, "cookie", "n", i)
		log.Warn("bad scgi", Key, "scgi", "n", i)
	}
	log.Info("request", "path", "/")
	got := lines(buf)
	require.Len(t, got, 3+3+1, "%s", strings.Join(got, "\n"))
	assert.Equal(t, `level=WARN msg="bad cookie" hostile=cookie n=0`, got[0])
	assert.Equal(t, `level=INFO msg=request path=/`, got[6], "other records are not limited")

	*now = now.Add(10 * time.Second)
	log.Warn("bad cookie", Key, "cookie", "n", 20)
	log.Warn("bad cookie", Key, "cookie", "n", 21)
	got = lines(buf)
	require.Len(t, got, 2)
	assert.Equal(t, `level=WARN msg="bad cookie" hostile=cookie n=20 suppressed=17`, got[0])
	assert.Equal(t, `level=WARN msg="bad cookie" hostile=cookie n=21`, got[1])
}

// TestRateLimitWith: a logger made With(Key, kind) limits every record it writes.
func TestRateLimitWith(t *testing.T) {
	log, buf, _ := newTest(Options{Burst: 2})
	shield := log.With(Key, "cookie", "route", "/")
	for range 5 {
		shield.Warn("removed")
	}
	assert.Len(t, lines(buf), 2)
}

// TestTruncate: string values of hostile-input records are cut to MaxValue bytes,
// those of other records to MaxOtherValue, errors and groups included.
func TestTruncate(t *testing.T) {
	log, buf, _ := newTest(Options{MaxValue: 10, MaxOtherValue: 20})
	long := strings.Repeat("x", 269*1024)
	log.Warn("bad", Key, "cookie", "value", long, "err", errors.New(long))
	log.Info("request", "path", long, slog.Group("g", "v", long), "n", 7)
	got := lines(buf)
	require.Len(t, got, 2)
	assert.Equal(t, `level=WARN msg=bad hostile=cookie value="xxxxxxxxxx...(275456 bytes)" err="xxxxxxxxxx...(275456 bytes)"`, got[0])
	assert.Equal(t, `level=INFO msg=request path="xxxxxxxxxxxxxxxxxxxx...(275456 bytes)" g.v="xxxxxxxxxxxxxxxxxxxx...(275456 bytes)" n=7`, got[1])
}

// Example: the gateway's logger, with the shield's warnings limited.
func Example() {
	log := slog.New(New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}), Options{Burst: 2}))
	for range 10 {
		log.Warn("removed a session cookie", Key, "cookie", "value", "../../etc/passwd")
	}
	// Output:
	// level=WARN msg="removed a session cookie" hostile=cookie value=../../etc/passwd
	// level=WARN msg="removed a session cookie" hostile=cookie value=../../etc/passwd
}
