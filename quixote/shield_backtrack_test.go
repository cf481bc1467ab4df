package quixote

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pyCookieTimer runs quixote_cookie_time.py: CPython timing Quixote's own
// parse_cookies, each call stopped after a limit of CPU time.
type pyCookieTimer struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

type pyTiming struct {
	CPU     float64 `json:"cpu"`
	Timeout bool    `json:"timeout"`
	Cookies int     `json:"cookies"`
}

func startPyCookieTimer(t testing.TB, limit string) *pyCookieTimer {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "quixote_cookie_time.py", limit)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return &pyCookieTimer{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (p *pyCookieTimer) close() { p.in.Close(); _ = p.cmd.Wait() }

func (p *pyCookieTimer) time(t testing.TB, header string) pyTiming {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	return askHeader[pyTiming](t, p.in, p.out, header)
}

// maxPythonCPU is what a forwarded header may cost CPython's parse_cookies, in
// seconds of CPU time: a few milliseconds, where the bait costs seconds.
const maxPythonCPU = 0.010

// backtrackBait are headers that keep Quixote's parse_cookies busy for seconds or
// more; the session cookie they hold must survive the shield.
var backtrackBait = map[string]string{
	"unterminated":           `a="` + strings.Repeat(`\`, 40),
	"unterminated-session":   `QX_session=abcdefghijk; a="` + strings.Repeat(`\`, 40),
	"session-after":          `a="` + strings.Repeat(`\`, 40) + `; QX_session=abcdefghijk`,
	"escape-swallows-last":   `a="x\"; QX_session=abcdefghijk; b=` + strings.Repeat(`\`, 40),
	"pairs":                  `QX_session="abcdefghijk"; a="` + strings.Repeat(`\a`, 60),
	"spaces":                 `QX_session=abcdefghijk;` + strings.Repeat(" ", 30000) + ";",
	"spaces-at-end":          `QX_session=abcdefghijk,,` + strings.Repeat("\t", 30000),
	"latin1-spaces":          `QX_session=abcdefghijk;` + strings.Repeat("\x85\xa0", 15000) + "=",
	"utf8-spaces":            `QX_session=abcdefghijk;` + strings.Repeat("\u3000", 20000) + "=",
	"unterminated-non-ascii": `QX_session=abcdefghijk; a="é` + strings.Repeat(`\`, 40) + "é",
}

// TestShieldDefusesBacktrackingInRealQuixote: the bait from the report, a="
// followed by 40 backslashes, takes the real Quixote's parse_cookies more than 3 s
// of CPU (it is stopped there; its own run is far longer); what the shield forwards
// takes it a few milliseconds. Every other bait shape takes Python over a quarter of
// a second before and a few milliseconds after, and the session cookie Python reads
// is the one Go reads.
func TestShieldDefusesBacktrackingInRealQuixote(t *testing.T) {
	long := startPyCookieTimer(t, "3.0")
	defer long.close()
	bait := `a="` + strings.Repeat(`\`, 40)
	before := long.time(t, bait)
	require.True(t, before.Timeout, "Python read the bait in %.3fs of CPU", before.CPU)
	t.Logf("before the shield: parse_cookies stopped after %.2fs of CPU", before.CPU)
	c := ShieldCookieHeader(bait, "QX_session")
	after := long.time(t, c.Header)
	t.Logf("after the shield: %q read in %.6fs of CPU", c.Header, after.CPU)
	require.False(t, after.Timeout)
	assert.Less(t, after.CPU, maxPythonCPU)

	py := startPyCookieTimer(t, "0.25")
	defer py.close()
	for name, h := range backtrackBait {
		t.Run(name, func(t *testing.T) {
			before := py.time(t, h)
			assert.True(t, before.Timeout, "the bait takes Python's parse_cookies over 0.25s of CPU (took %.3fs)", before.CPU)
			c := ShieldCookieHeader(h, "QX_session")
			require.False(t, c.Dropped)
			require.NotEmpty(t, c.Defused)
			after := py.time(t, c.Header)
			assert.False(t, after.Timeout)
			assert.Less(t, after.CPU, maxPythonCPU, "shielded header %q", c.Header)
			assert.Equal(t, ParseCookies(h)["QX_session"], ParseCookies(c.Header)["QX_session"],
				"Python reads the same session cookie, as Go does")
			assert.Less(t, len(c.Header), len(h))
		})
	}
}

// TestShieldDefuseKeepsPythonsReading: on bait small enough for Python to finish,
// Quixote's parse_cookies reads the defused header as it reads the original, but for
// the cookies cut out (the ones with backslashes after the last quote, whose names
// start with a quote or hold a backslash).
func TestShieldDefuseKeepsPythonsReading(t *testing.T) {
	py := startPyCookieReader(t)
	for _, h := range []string{
		`x=1; a="` + strings.Repeat(`\`, 22) + `; QX_session=abcdefghijk; y=2`,
		`x=1; a="x\"; QX_session=abcdefghijk; b=` + strings.Repeat(`\`, 22) + `; y=2`,
		`x=1;QX_session="abcdefghijk"; a=b, c="` + strings.Repeat(`\`, 22) + ` c=d; y=2`,
		`x=1;` + strings.Repeat(" ", 200) + `;QX_session=abcdefghijk;` + strings.Repeat(" ", 200) + `=y=2`,
	} {
		c := ShieldCookieHeader(h, "QX_session")
		require.NotEmpty(t, c.Defused, h)
		before, after := pyDict(py.read(t, h).Latin1), pyDict(py.read(t, c.Header).Latin1)
		for name, v := range before {
			if strings.ContainsAny(name+v, `"\`) {
				continue
			}
			assert.Equal(t, v, after[name], "%q in %q -> %q", name, h, c.Header)
		}
		assert.Equal(t, "abcdefghijk", after["QX_session"])
	}
}

func pyDict(matches [][4]any) map[string]string {
	d := map[string]string{}
	for _, m := range matches {
		d[m[2].(string)] = m[3].(string)
	}
	return d
}

// TestScanCostFindsTheBait: the grammar's step counts for the shapes that backtrack
// grow as Python's engine does (Fibonacci in the backslashes, quadratic in the white
// space), and stay at zero for ordinary headers.
func TestScanCostFindsTheBait(t *testing.T) {
	cost := func(h string) int64 { s := scan(h, true, "QX_session", false); return s.spaceCost + s.tailCost }
	assert.Zero(t, cost(`theme=dark; QX_session="abcdefghijk"; _ga=GA1.2.3456789.1234567890; lang="en"`))
	assert.Less(t, cost(`a="`+strings.Repeat(`\`, 10)), int64(maxBacktrack))
	assert.Greater(t, cost(`a="`+strings.Repeat(`\`, 30)), int64(maxBacktrack))
	assert.Greater(t, cost(`a="`+strings.Repeat(`\`, 31)), cost(`a="`+strings.Repeat(`\`, 30))*3/2)
	assert.Equal(t, int64(maxSteps), cost(`a="`+strings.Repeat(`\`, 200)), "saturates")
	assert.Equal(t, int64(10*11/2), cost(`a;`+strings.Repeat(" ", 10)+";"))
	assert.Zero(t, cost(`a="`+strings.Repeat(`\`, 30)+`"`), "a closing quote reached without backing off costs nothing")
	assert.Zero(t, cost(`a=`+strings.Repeat(`\`, 30)), "backslashes outside quotes cost nothing")
}

// FuzzShieldPythonTime: whatever the header, what the shield forwards takes the real
// Quixote's parse_cookies (CPython, under both decodings) at most maxPythonCPU. One
// CPython process per fuzzing process serves every input.
func FuzzShieldPythonTime(f *testing.F) {
	for _, h := range trickyHeaders {
		f.Add(h)
	}
	for _, h := range backtrackBait {
		f.Add(h)
	}
	py := startPyCookieTimer(f, "0.5")
	f.Cleanup(py.close)
	f.Fuzz(func(t *testing.T, h string) {
		if len(h) > 4096 {
			return
		}
		c := ShieldCookieHeader(h, "QX_session")
		if c.Dropped {
			return
		}
		if got := py.time(t, c.Header); got.Timeout || got.CPU > maxPythonCPU {
			t.Fatalf("shielding %q forwards %q, which takes Python %.4fs of CPU", h, c.Header, got.CPU)
		}
	})
}
