// Package testwrk runs the wrk HTTP load generator for a benchmark and parses the
// summary it prints with --latency:
//
//	r := testwrk.Run(b, inst.URL+"/hello", testwrk.Options{Conns: 8, Duration: 5 * time.Second})
//	b.ReportMetric(r.RPS, "req/s")
//
// wrk is found on PATH; when it is missing, the benchmark is skipped, or failed under
// CI=true (testpeer.Missing), like any other missing peer.
//
// A run whose output reports Non-2xx responses or socket errors (connect, read, write,
// timeout) fails the benchmark unless Options.AllowErrors is set: a figure measured
// over failed requests is not a figure of the page. wrk's -d and --timeout take whole
// seconds only, so Duration and Timeout must be whole seconds.
package testwrk

import (
	"cmp"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
)

// Options are wrk's command-line settings for one run.
type Options struct {
	// Threads is -t; 0 means 1.
	Threads int
	// Conns is -c, open connections across all threads; 0 means 1.
	Conns int
	// Duration is -d, whole seconds; 0 means 1s.
	Duration time.Duration
	// Timeout is --timeout, whole seconds; 0 leaves wrk's default (2s).
	Timeout time.Duration
	// Script is -s, a Lua script file (e.g. to set a header per request); "" for none.
	Script string
	// AllowErrors keeps wrk's error lines in Result.Errors instead of failing the run.
	AllowErrors bool
}

// Result is what one wrk run measured.
type Result struct {
	// RPS is wrk's Requests/sec.
	RPS float64
	// P50, P90 and P99 are latency percentiles from wrk's Latency Distribution.
	P50, P90, P99 time.Duration
	// Requests is the number of requests wrk completed.
	Requests int
	// Errors holds wrk's "Socket errors" and "Non-2xx or 3xx responses" lines,
	// joined by "; ", or "" when it reported none.
	Errors string
	// CPU is the user plus system CPU time wrk itself used.
	CPU time.Duration
	// Output is wrk's complete output.
	Output string
}

// Run loads url with wrk --latency and returns the parsed summary. It fails tb when
// wrk cannot run, its output lacks a figure, no request completed, or (without
// AllowErrors) wrk reports errors.
func Run(tb testing.TB, url string, o Options) Result {
	tb.Helper()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		testpeer.Missing(tb, "wrk")
	}
	args, err := o.args()
	require.NoError(tb, err)
	cmd := exec.Command(wrk, append(args, url)...)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "wrk %s: %s", strings.Join(args, " "), out)
	r, err := parse(string(out))
	require.NoError(tb, err, "wrk output:\n%s", out)
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if !o.AllowErrors {
		require.Empty(tb, r.Errors, "wrk reported errors:\n%s", out)
	}
	return r
}

func (o Options) args() ([]string, error) {
	threads, conns, d := max(o.Threads, 1), max(o.Conns, 1), o.Duration
	if d == 0 {
		d = time.Second
	}
	secs := func(name string, d time.Duration) (string, error) {
		if d <= 0 || d%time.Second != 0 {
			return "", fmt.Errorf("testwrk: %s %v is not a positive whole number of seconds, which wrk requires", name, d)
		}
		return strconv.FormatInt(int64(d/time.Second), 10) + "s", nil
	}
	ds, err := secs("Duration", d)
	if err != nil {
		return nil, err
	}
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + ds}
	if o.Timeout != 0 {
		ts, err := secs("Timeout", o.Timeout)
		if err != nil {
			return nil, err
		}
		args = append(args, "--timeout", ts)
	}
	args = append(args, "--latency")
	if o.Script != "" {
		args = append(args, "-s", o.Script)
	}
	return args, nil
}

var (
	percentileLine = regexp.MustCompile(`(?m)^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	rateLine       = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)\s*$`)
	countLine      = regexp.MustCompile(`(?m)^\s+(\d+) requests in `)
	errorLine      = regexp.MustCompile(`(?m)^\s*((?:Socket errors|Non-2xx or 3xx responses):.*?)\s*$`)
)

// wrk prints latencies with these units (units.c, format_time_us).
var latencyUnit = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}

// parse reads the summary wrk --latency prints.
func parse(out string) (Result, error) {
	r := Result{Output: out}
	found := map[string]bool{}
	for _, m := range percentileLine.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return r, fmt.Errorf("latency %s%%: %w", m[1], err)
		}
		d := time.Duration(v * float64(latencyUnit[m[3]]))
		switch m[1] {
		case "50":
			r.P50 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
		found[m[1]] = true
	}
	for _, p := range []string{"50", "90", "99"} {
		if !found[p] {
			return r, fmt.Errorf("no %s%% latency in wrk output (was --latency given?)", p)
		}
	}
	m := rateLine.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("no Requests/sec in wrk output")
	}
	var err error
	if r.RPS, err = strconv.ParseFloat(m[1], 64); err != nil {
		return r, fmt.Errorf("parsing Requests/sec: %w", err)
	}
	if m = countLine.FindStringSubmatch(out); m == nil {
		return r, errors.New("no request count in wrk output")
	}
	if r.Requests, err = strconv.Atoi(m[1]); err != nil {
		return r, fmt.Errorf("request count: %w", err)
	}
	var errs []string
	for _, m := range errorLine.FindAllStringSubmatch(out, -1) {
		errs = append(errs, m[1])
	}
	r.Errors = strings.Join(errs, "; ")
	if r.Requests == 0 || r.RPS == 0 || r.P50 == 0 {
		return r, errors.New("wrk completed no requests")
	}
	return r, nil
}

// Median returns the element of xs at the median of key: the upper middle one for
// an even count. Benchmarks alternate rounds of the setups they compare and report
// each setup's median round, which a one-off stall of the machine does not move.
// xs must not be empty; it is left unchanged.
func Median[T any](xs []T, key func(T) float64) T {
	s := slices.Clone(xs)
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return s[len(s)/2]
}
