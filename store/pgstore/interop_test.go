package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// The Python store ships its own copy of the schema (it must be inside the Python
// package); both sides run the same statements.
func TestSchemaSameAsPython(t *testing.T) {
	goSchema, err := os.ReadFile("schema.sql")
	require.NoError(t, err)
	pySchema, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "python", "src", "qxbridge_pgstore", "schema.sql"))
	require.NoError(t, err)
	assert.Equal(t, string(goSchema), string(pySchema))
}

// pyPeer runs testdata/py/pgstore_peer.py: the real Quixote publisher and session3
// SessionManager over the Python store of python/.
func pyPeer(t *testing.T, srv *testpg.Server, table string, args ...string) []byte {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "pgstore_peer.py", append([]string{srv.DSN, table}, args...)...)
	cmd.Env = append(cmd.Env, "PYTHONPATH="+testpeer.Testdata("py")+string(os.PathListSeparator)+
		filepath.Join(testpeer.RepoRoot(), "python", "src"))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("pgstore_peer.py %v: %v\n%s", args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return out
}

type pyResponse struct {
	Status int     `json:"status"`
	Body   string  `json:"body"`
	Cookie *string `json:"cookie"`
}

func pyRequest(t *testing.T, srv *testpg.Server, table, path, id string) pyResponse {
	t.Helper()
	args := []string{"request", path}
	if id != "" {
		args = append(args, id)
	}
	var r pyResponse
	require.NoError(t, json.Unmarshal(pyPeer(t, srv, table, args...), &r))
	return r
}

// schemaOf describes a table's columns and indexes, with the table's name removed.
func schemaOf(t *testing.T, srv *testpg.Server, table string) string {
	return srv.SQL(t, fmt.Sprintf(`SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, ''), E'\n' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_name = '%[1]s'
		UNION ALL
		SELECT string_agg(replace(indexdef, '%[1]s', 'T'), E'\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = '%[1]s'`, table))
}

// goApp is a Go page set behind quixote.Manager over a Store: /login?user=NAME and
// /counter, as the Python peer's pages.
func goApp(s *pgstore.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		_ = quixote.SessionFrom(r).SetUser(r.FormValue("user"))
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/counter", func(w http.ResponseWriter, r *http.Request) {
		sess := quixote.SessionFrom(r)
		n, _ := sess.GetInt("counter")
		_ = sess.Set("counter", n+1)
		fmt.Fprint(w, n+1)
	})
	return quixote.NewManager(s).Handler(mux)
}

func goRequest(t *testing.T, h http.Handler, path, id string) (body, cookie string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if id != "" {
		req.Header.Set("Cookie", `QX_session="`+id+`"`)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	for _, c := range rec.Result().Cookies() {
		if c.Name == quixote.DefaultCookieName {
			cookie = c.Value
		}
	}
	return rec.Body.String(), cookie
}

// TestInteropPython: sessions made and changed by Go are served by the real
// Quixote/session3 over the Python store and the other way round, through one
// table that either side may have created; the bytes in the table are the ones
// session3's DirectorySessionStore writes.
func TestInteropPython(t *testing.T) {
	testpeer.Python(t)
	srv := testpg.Start(t)
	ctx := context.Background()

	for _, first := range []string{"python", "go"} {
		t.Run(first+"-creates-schema", func(t *testing.T) {
			table := "interop_" + first
			if first == "python" {
				pyPeer(t, srv, table, "setup")
			}
			s, err := pgstore.Open(ctx, srv.DSN, pgstore.WithTable(table))
			require.NoError(t, err)
			defer s.Close()
			if first == "go" {
				pyPeer(t, srv, table, "setup") // idempotent on the Go-made table
			}
			app := goApp(s)

			// Go makes the session, Python changes it, Go sees the change.
			_, id := goRequest(t, app, "/login?user=alice", "")
			require.NotEmpty(t, id)
			body, _ := goRequest(t, app, "/counter", id)
			require.Equal(t, "1", body)
			r := pyRequest(t, srv, table, "/counter", id)
			require.Equal(t, 200, r.Status)
			require.Equal(t, "2", r.Body)
			require.Nil(t, r.Cookie, "Python took the Go session for its own")
			body, _ = goRequest(t, app, "/counter", id)
			require.Equal(t, "3", body)

			// Python makes a session, Go changes it, Python sees the change.
			r = pyRequest(t, srv, table, "/login?user=bob", "")
			require.NotNil(t, r.Cookie)
			pyID := *r.Cookie
			body, _ = goRequest(t, app, "/counter", pyID)
			require.Equal(t, "1", body)
			assert.Equal(t, "2", pyRequest(t, srv, table, "/counter", pyID).Body)
			data, err := s.Load(ctx, pyID)
			require.NoError(t, err)
			sess, err := quixote.Decode(data)
			require.NoError(t, err)
			assert.Equal(t, "bob", sess.User())

			// The table holds what session3's DirectorySessionStore writes, for
			// the session Go saved last and the one Python saved last.
			for _, sid := range []string{id, pyID} {
				dir := t.TempDir()
				pyPeer(t, srv, table, "dirsave", sid, dir)
				file, err := os.ReadFile(filepath.Join(dir, sid))
				require.NoError(t, err)
				stored, err := s.Load(ctx, sid)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(file, stored), "session %s: table and session3 file differ", sid)
			}
			// Go's encoding of the session Python saved is byte-identical too.
			again, err := sess.Encode()
			require.NoError(t, err)
			assert.Equal(t, data, again)

			users, err := s.UserIDs(ctx, "bob")
			require.NoError(t, err)
			assert.Equal(t, []string{pyID}, users, "the Python store fills user_name")
		})
	}
	assert.Equal(t, schemaOf(t, srv, "interop_python"), schemaOf(t, srv, "interop_go"))
}
