package quixote

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/qxbridge/qxbridge/store"
)

// session4Fixtures are the files testdata/py/session4_fixtures.py wrote with the
// real session4 (see testdata/README.md).
var session4Fixtures = []string{"session4-login.pkl", "session4-tokens.pkl", "session4-rich.pkl"}

func session4Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testpeer.Testdata("session4", name))
	require.NoError(t, err)
	return b
}

// session4Change is one change Go makes to a session4 fixture, the CPython check
// of it, and what _last_values must hold afterwards.
type session4Change struct {
	name   string
	change func(t *testing.T, s *Session) map[string]any
	last   string // "exact", "kept" or "reset" (see quixote_golden_check.py)
}

var session4Changes = map[string][]session4Change{
	"session4-login.pkl": {
		{"counter", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Set("counter", 1))
			return map[string]any{"attr": "counter", "expect": "1"}
		}, "exact"},
		{"user", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.SetUser("bob"))
			return map[string]any{"attr": "user", "expect": "'bob'"}
		}, "exact"},
		{"touch", func(t *testing.T, s *Session) map[string]any {
			require.True(t, s.Touch(time.Now()))
			return map[string]any{"attr": "_access_time", "check": "lambda t: abs(t - time.time()) < 600"}
		}, "exact"},
		{"csrf token", func(t *testing.T, s *Session) map[string]any {
			tok, err := s.CSRFToken()
			require.NoError(t, err)
			return map[string]any{"attr": "_csrf_token", "expect": pyStr(tok)}
		}, "exact"},
	},
	"session4-tokens.pkl": {
		{"form token", func(t *testing.T, s *Session) map[string]any {
			tok := s.CreateFormToken()
			return map[string]any{"attr": "_form_tokens", "check": "lambda l: l == ['epYIEYFdJ-ka1_L1fwoZRw', " +
				"'vBRv0fYGV6q389utr30XIg', " + pyStr(tok) + "]"}
		}, "exact"},
		{"note with escapes", func(t *testing.T, s *Session) map[string]any {
			note := "na\u00efve\u00a0\u00ad\u2028\U0001F600 'q' \\ \x7f\t\u200b"
			require.NoError(t, s.Set("note", note))
			return map[string]any{"attr": "note", "expect": pyStr(note)}
		}, "exact"},
		{"cart key", func(t *testing.T, s *Session) map[string]any {
			cart, _ := s.Get("cart")
			require.NoError(t, cart.(*pickle.Dict).Set("sku-3", 2.5))
			return map[string]any{"attr": "cart", "expect": "{'sku-1': 2, 'sku-2': 1, 'sku-3': 2.5}"}
		}, "exact"},
	},
	"session4-rich.pkl": {
		// A Decimal and a datetime: Go does not rebuild their repr.
		{"counter added", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Set("counter", 1))
			return map[string]any{"attr": "counter", "added": true, "expect": "1"}
		}, "reset"},
		{"touch", func(t *testing.T, s *Session) map[string]any {
			require.True(t, s.Touch(time.Now()))
			return map[string]any{"attr": "_access_time", "check": "lambda t: abs(t - time.time()) < 600"}
		}, "kept"},
	},
}

// TestSession4Golden loads the session4 files, checks what Go reads, makes one change
// at a time, saves through store.Directory, and has CPython load each result with
// session4's store and classes: exactly that change, protocol 5, and a _last_values
// that keeps session4's is_dirty right.
func TestSession4Golden(t *testing.T) {
	testpeer.Python(t)
	dir := t.TempDir()
	var cases []map[string]any
	save := func(caseName string, s *Session) string {
		sub := filepath.Join(dir, strconv.Itoa(len(cases)))
		st, err := store.Open(sub, store.WithCreate())
		require.NoError(t, err)
		data, err := s.Encode()
		require.NoError(t, err, caseName)
		require.Equal(t, byte(5), data[1], "%s: protocol", caseName)
		require.NoError(t, st.Save(context.Background(), s.ID(), data))
		return filepath.Join(sub, s.ID())
	}
	for _, name := range session4Fixtures {
		orig := testpeer.Testdata("session4", name)
		data := session4Fixture(t, name)
		s, err := Decode(data)
		require.NoError(t, err, name)
		assert.Equal(t, Session4Class, s.Class())
		assert.Equal(t, "203.0.113.7", s.RemoteAddress())
		assert.Equal(t, 1795303038.0725188, epochSeconds(s.CreationTime()))
		assert.True(t, s.HasInfo())
		assert.NotContains(t, s.Names(), "_last_values")
		assert.ErrorIs(t, s.Set("_last_values", "x"), ErrReserved)
		// Unchanged, a loaded session encodes to the very bytes session4 wrote: Go's
		// _last_values is CPython's, or the loaded one when Go cannot rebuild it.
		same, err := s.Encode()
		require.NoError(t, err)
		assert.Equal(t, data, same, "%s re-encoded", name)

		require.NotEmpty(t, session4Changes[name], name)
		for _, ch := range session4Changes[name] {
			s, err := Decode(data)
			require.NoError(t, err)
			spec := ch.change(t, s)
			cases = append(cases, map[string]any{"name": name + "/" + ch.name, "mode": "change", "protocol": 5,
				"original": orig, "result": save(name+"/"+ch.name, s), "change": spec, "last_values": ch.last})
		}
	}
	// A new session made in Go, as the manager stores it.
	s := NewSession(Session4Class, "203.0.113.7", time.Now())
	s.setID(randToken(tokenBytes))
	require.NoError(t, s.SetUser("alice"))
	cases = append(cases, map[string]any{"name": "new session4", "mode": "new", "protocol": 5,
		"result": save("new", s), "class": Session4Class.String(), "remote_address": "203.0.113.7", "last_values": "exact"})

	goldenCheckOK(t, dir, cases, len(cases))
}

// TestSession4CheckerCatchesStaleLastValues makes sure the CPython check is not
// blind: a save that changes an attribute but leaves _last_values as loaded (the
// lost-update bug) must fail it, and so must a protocol 4 file.
func TestSession4CheckerCatchesStaleLastValues(t *testing.T) {
	testpeer.Python(t)
	dir := t.TempDir()
	orig := testpeer.Testdata("session4", "session4-login.pkl")
	s, err := Decode(session4Fixture(t, "session4-login.pkl"))
	require.NoError(t, err)
	require.NoError(t, s.Set("counter", 1))
	var stale bytes.Buffer
	enc := pickle.NewEncoder(&stale)
	enc.Protocol = 5
	require.NoError(t, enc.Encode(s.Object())) // no preserveLastValues
	staleFile := filepath.Join(dir, "stale")
	require.NoError(t, os.WriteFile(staleFile, stale.Bytes(), 0o644))
	p4, err := pickle.Marshal(s.Object())
	require.NoError(t, err)
	p4File := filepath.Join(dir, "p4")
	require.NoError(t, os.WriteFile(p4File, p4, 0o644))

	counter1 := map[string]any{"attr": "counter", "expect": "1"}
	cases := []map[string]any{
		{"name": "stale", "mode": "change", "protocol": 5, "original": orig, "result": staleFile, "change": counter1, "last_values": "exact"},
		{"name": "protocol 4", "mode": "change", "protocol": 5, "original": orig, "result": p4File, "change": counter1, "last_values": "exact"},
	}
	out, err := runGoldenCheck(t, dir, cases)
	require.Error(t, err, "%s", out)
	for _, c := range cases {
		assert.Contains(t, out, "FAIL "+c["name"].(string)+":", "%s", out)
	}
}

// runGoldenCheck writes cases (a JSON list, see quixote_golden_check.py) into dir
// and runs the CPython checker on them.
func runGoldenCheck(t *testing.T, dir string, cases any) (string, error) {
	t.Helper()
	spec, err := json.Marshal(cases)
	require.NoError(t, err)
	specFile := filepath.Join(dir, "cases.json")
	require.NoError(t, os.WriteFile(specFile, spec, 0o644))
	out, err := testpeer.PythonCmd(t, "quixote_golden_check.py", specFile).CombinedOutput()
	return string(out), err
}

// goldenCheckOK runs the CPython checker on n cases and requires "ok" for each.
func goldenCheckOK(t *testing.T, dir string, cases any, n int) {
	t.Helper()
	out, err := runGoldenCheck(t, dir, cases)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines {
		assert.True(t, strings.HasPrefix(line, "ok "), "%s", line)
	}
	require.NoError(t, err, "%s", out)
	assert.Len(t, lines, n, "one verdict per case")
}
