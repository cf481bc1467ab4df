package gateway

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureIDs are the session3 golden fixtures under the ids they hold.
var fixtureIDs = map[string]string{
	"4qihCikDywk":            "session3-login.pkl",
	"Q4PJ1fkwwK8":            "subclass-rich.pkl",
	"bb2_-Qy4sEs":            "dictsession-cart.pkl",
	"_dz4opoXoCaSYW452SPgjQ": "quixote-session.pkl",
	// This fixture holds the same session as session3-login.pkl, later; it is stored
	// under a name of its own (the admin commands take the file name as the id).
	"counterTokens": "session3-counter-tokens.pkl",
}

// fixtureDir copies the fixtures into a fresh session directory.
func fixtureDir(t *testing.T) string {
	dir := t.TempDir()
	for id, name := range fixtureIDs {
		b, err := os.ReadFile(testpeer.Testdata("session3", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, id), b, 0o644))
	}
	return dir
}

// admin runs `scgi-gateway sessions -dir dir args...` through run.
func admin(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// The lock directory a gateway serving dir would have made: the admin commands
	// never make it.
	require.NoError(t, os.MkdirAll(defaultLockDir(dir), 0o770))
	var o, e strings.Builder
	code = newTestGateway().Run(t.Context(), append([]string{"sessions", "-dir", dir}, args...), &o, &e)
	return code, o.String(), e.String()
}

func TestAdminList(t *testing.T) {
	dir := fixtureDir(t)
	old := time.Now().Add(-3 * time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "bb2_-Qy4sEs"), old, old))
	code, out, errs := admin(t, dir, "list")
	require.Equal(t, 0, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6)
	assert.Regexp(t, `^ID\s+USER\s+CLASS\s+IDLE$`, lines[0])
	assert.Regexp(t, `^4qihCikDywk\s+alice\s+session3\.Session\.Session\s+\d+s$`, lines[1])
	assert.Regexp(t, `^Q4PJ1fkwwK8\s+carol\s+myapp\.models\.ShopSession\s+\d+s$`, lines[2])
	assert.Regexp(t, `^_dz4opoXoCaSYW452SPgjQ\s+alice\s+quixote\.session\.Session\s+\d+s$`, lines[3])
	assert.Regexp(t, `^bb2_-Qy4sEs\s+dora\s+session3\.DictSession\.DictSession\s+(2h59m5\ds|3h0m0s)$`, lines[4])
	assert.Regexp(t, `^counterTokens\s+alice\s+session3\.Session\.Session\s+\d+s$`, lines[5])

	code, out, errs = admin(t, dir, "list", "-json")
	require.Equal(t, 0, code, errs)
	var entries []struct {
		ID          string          `json:"id"`
		User        json.RawMessage `json:"user"`
		Class       string          `json:"class"`
		IdleSeconds float64         `json:"idle_seconds"`
		Error       string          `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &entries), out)
	require.Len(t, entries, 5)
	assert.Equal(t, "Q4PJ1fkwwK8", entries[1].ID)
	assert.JSONEq(t, `{"__class__":"myapp.models.Account","__state__":{"login":"carol","roles":{"__set__":["ops","admin"]},"last_login":{"__datetime__":"2026-11-21T09:30:00"}}}`, string(entries[1].User))
	assert.Equal(t, `"dora"`, string(entries[3].User))
	assert.InDelta(t, 3*3600, entries[3].IdleSeconds, 5)
	assert.Empty(t, entries[3].Error)

	// An empty directory lists nothing; JSON gives [].
	code, out, _ = admin(t, t.TempDir(), "list", "-json")
	assert.Equal(t, 0, code)
	assert.Equal(t, "[]\n", out)
}

func TestAdminShow(t *testing.T) {
	dir := fixtureDir(t)
	code, out, errs := admin(t, dir, "show", "Q4PJ1fkwwK8")
	require.Equal(t, 0, code, errs)
	var shown struct {
		ID         string `json:"id"`
		Class      string `json:"class"`
		Size       int    `json:"size"`
		Attributes map[string]struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
	assert.Equal(t, "myapp.models.ShopSession", shown.Class)
	fi, _ := os.Stat(filepath.Join(dir, "Q4PJ1fkwwK8"))
	assert.Equal(t, int(fi.Size()), shown.Size)
	types := map[string]string{}
	for k, v := range shown.Attributes {
		types[k] = v.Type
	}
	assert.Equal(t, map[string]string{
		"id": "str", "user": "myapp.models.Account", "_remote_address": "str", "_creation_time": "float",
		"_access_time": "float", "_form_tokens": "list", "cart": "dict", "total": "decimal.Decimal", "seen": "tuple",
	}, types)
	assert.JSONEq(t, `{"__decimal__":"12.50"}`, string(shown.Attributes["total"].Value))
	assert.JSONEq(t, `{"__tuple__":["home","cart"]}`, string(shown.Attributes["seen"].Value))
	// Attributes come in the pickle's (the __dict__'s) order.
	order := []string{`"id"`, `"user"`, `"_remote_address"`, `"_creation_time"`, `"_access_time"`, `"_form_tokens"`, `"cart"`, `"total"`, `"seen"`}
	last := 0
	for _, k := range order {
		i := strings.Index(out, k+": {")
		require.Greater(t, i, last, k)
		last = i
	}

	code, out, _ = admin(t, dir, "show", "bb2_-Qy4sEs")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"data": {`)
	assert.Contains(t, out, `"type": "dict"`)
}

// TestAdminSetKeepsEverythingElse changes one attribute of each fixture and has CPython
// compare the result with the original: the attribute has the new value, everything
// else is pickled exactly as before, and the class is unchanged.
func TestAdminSetKeepsEverythingElse(t *testing.T) {
	dir := fixtureDir(t)
	for _, tc := range []struct{ id, name, json string }{
		{"4qihCikDywk", "user", `"bob"`},
		{"Q4PJ1fkwwK8", "counter", `5`},
		{"Q4PJ1fkwwK8", "note", `{"a": [1, 2.5, null, true]}`},
		{"bb2_-Qy4sEs", "user", `null`},
		{"_dz4opoXoCaSYW452SPgjQ", "_remote_address", `"198.51.100.1"`},
		{"counterTokens", "counter", `7`},
	} {
		before, err := os.ReadFile(filepath.Join(dir, tc.id))
		require.NoError(t, err)
		orig := filepath.Join(t.TempDir(), "orig")
		require.NoError(t, os.WriteFile(orig, before, 0o644))

		code, out, errs := admin(t, dir, "set", tc.id, tc.name+"="+tc.json)
		require.Equal(t, 0, code, errs)
		assert.Contains(t, out, tc.id+": "+tc.name+" = ")

		cmd := testpeer.PythonCmd(t, "gateway_admin_check.py", orig, filepath.Join(dir, tc.id), tc.name, tc.json)
		res, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s %s: %s", tc.id, tc.name, res)
		assert.Equal(t, "ok\n", string(res), "%s %s", tc.id, tc.name)
	}
}

func TestAdminSetRefusals(t *testing.T) {
	dir := fixtureDir(t)
	path := filepath.Join(dir, "4qihCikDywk")
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"set", "4qihCikDywk", "counter=notjson"}, 2, "not a JSON value"},
		{[]string{"set", "4qihCikDywk", "counter"}, 2, "want NAME=JSON"},
		{[]string{"set", "4qihCikDywk", "id=\"x\""}, 2, "cannot be changed"},
		{[]string{"set", "4qihCikDywk", "bad name=1"}, 2, "not an attribute name"},
		{[]string{"set", "4qihCikDywk", "_form_tokens=5"}, 2, "would no longer be a session"},
		{[]string{"set", "4qihCikDywk", `x={"__class__": "os.system"}`}, 2, "not a JSON value"},
		{[]string{"set", "nosuchsess", "counter=1"}, 1, "no session nosuchsess"},
		{[]string{"set", "../etc/passwd", "counter=1"}, 2, "is not a session id"},
		{[]string{"set", "4qihCikDywk"}, 2, "usage"},
	} {
		code, _, errs := admin(t, dir, tc.args...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		assert.Contains(t, errs, tc.msg, "%v", tc.args)
	}
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused set writes nothing")
}

func TestAdminDeleteSweepAndErrors(t *testing.T) {
	dir := fixtureDir(t)
	code, out, errs := admin(t, dir, "delete", "4qihCikDywk")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "deleted 4qihCikDywk\n", out)
	assert.NoFileExists(t, filepath.Join(dir, "4qihCikDywk"))
	code, _, errs = admin(t, dir, "delete", "4qihCikDywk")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "no session 4qihCikDywk")
	code, _, errs = admin(t, dir, "delete", "..")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "is not a session id")

	// Files that are not sessions: an empty one (a crashed Python writer), garbage, a
	// directory under a session's name, a foreign file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "emptyFile01"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "garbage0001"), []byte("not a pickle"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "aDirectory1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	code, out, errs = admin(t, dir, "list")
	assert.Equal(t, 1, code, "unreadable files make list fail after listing everything")
	assert.Contains(t, errs, "2 of 6 session files could not be read")
	assert.Regexp(t, `(?m)^emptyFile01\s+-\s+-\s+\d+s\s+\(.*empty`, out)
	assert.Regexp(t, `(?m)^garbage0001\s+-\s+-\s+\d+s\s+\(session garbage0001: `, out)
	assert.Contains(t, out, "Q4PJ1fkwwK8")
	assert.NotContains(t, out, "aDirectory1")
	assert.NotContains(t, out, "notes.txt")

	code, _, errs = admin(t, dir, "show", "garbage0001")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "session garbage0001:")
	code, _, errs = admin(t, dir, "show", "aDirectory1")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "not a regular file")
	code, _, errs = admin(t, dir, "show", "emptyFile01")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "empty")

	// sweep: two sessions idle for two hours go, and so does the stale empty file.
	old := time.Now().Add(-2 * time.Hour)
	for _, id := range []string{"Q4PJ1fkwwK8", "bb2_-Qy4sEs", "emptyFile01"} {
		require.NoError(t, os.Chtimes(filepath.Join(dir, id), old, old))
	}
	code, out, errs = admin(t, dir, "sweep", "-older", "1h")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "deleted 3, remaining 3\n", out)
	assert.ElementsMatch(t, []string{"_dz4opoXoCaSYW452SPgjQ", "counterTokens", "garbage0001", "aDirectory1", "notes.txt"}, sessionFiles(t, dir))

	code, _, _ = admin(t, dir, "sweep")
	assert.Equal(t, 2, code, "sweep needs -older")
	code, _, errs = admin(t, dir, "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, `unknown command "frobnicate"`)
	code, _, errs = admin(t, filepath.Join(dir, "missing"), "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "session directory")
	code, _, errs = admin(t, dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "usage: scgi-gateway sessions")
}

// TestAdminBinaryWordOrder runs the real command line, as a user types it.
func TestAdminBinaryWordOrder(t *testing.T) {
	dir := fixtureDir(t)
	cmd := exec.Command(os.Args[0], "sessions", "-dir", dir, "show", "4qihCikDywk")
	cmd.Env = append(os.Environ(), "SCGI_GATEWAY_MAIN=1")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"user": {`)
	cmd = exec.Command(os.Args[0], "sessions", "-dir", dir, "show", "nosuchsess")
	cmd.Env = append(os.Environ(), "SCGI_GATEWAY_MAIN=1")
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
}
