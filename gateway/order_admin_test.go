package gateway

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/pickle"
	"github.com/qxbridge/qxbridge/quixote"
)

// TestAdminDeleteUser: delete -user removes every session of that user, whatever
// its class, and no other.
func TestAdminDeleteUser(t *testing.T) {
	dir := fixtureDir(t)
	code, out, errs := admin(t, dir, "delete", "-user", "alice")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "deleted 3 sessions of user alice\n")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	var left []string
	for _, f := range files {
		left = append(left, f.Name())
	}
	assert.ElementsMatch(t, []string{"Q4PJ1fkwwK8", "bb2_-Qy4sEs"}, left)

	code, out, _ = admin(t, dir, "delete", "-user", "nobody")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "deleted 0 sessions of user nobody")
	code, _, errs = admin(t, dir, "delete", "-user", "alice", "bb2_-Qy4sEs")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "usage:")
	code, _, _ = admin(t, dir, "delete")
	assert.Equal(t, 2, code)
}

// TestAdminWaitsForRequestInFlight: `sessions delete` and `sessions set` run while a
// Go request of that session is in flight (it has loaded the session and will save
// it) wait for the request to finish, so that its save cannot undo them. Without
// the wait, the request's save brings the deleted session back, or writes its older
// copy over the set.
func TestAdminWaitsForRequestInFlight(t *testing.T) {
	for _, cmd := range [][]string{{"delete", "ID"}, {"set", "ID", `user="bob"`}} {
		t.Run(cmd[0], func(t *testing.T) {
			g := New()
			g.Logger = discardLogger()
			g.Config.SessionsDir = filepath.Join(t.TempDir(), "sessions")
			entered, release := make(chan struct{}), make(chan struct{})
			g.HandleFunc("bump", func(w http.ResponseWriter, r *http.Request) {
				s := quixote.SessionFrom(r)
				n, _ := s.GetInt("counter")
				require.NoError(t, s.Set("counter", n+1))
				close(entered)
				<-release
			})
			g.Config.Routes = []Route{{Prefix: "/", Target: "bump"}}
			require.NoError(t, g.Open())
			t.Cleanup(func() { g.Close() })

			s := quixote.NewSession(quixote.Session3Class, "", time.Now())
			require.NoError(t, s.SetUser("alice"))
			const id = "InFlight123"
			require.NoError(t, s.Object().SetAttr("id", id))
			data, err := s.Encode()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(g.Config.SessionsDir, id), data, 0o600))

			served := make(chan int)
			go func() {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", `QX_session="`+id+`"`)
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				served <- w.Code
			}()
			<-entered
			args := append([]string{}, cmd...)
			args[1] = id
			done := make(chan string)
			go func() {
				code, out, errs := admin(t, g.Config.SessionsDir, args...)
				assert.Equal(t, 0, code, errs)
				done <- out
			}()
			// Give the command time to reach the session (without the lock it would
			// delete or write now); the outcome below holds however long this is.
			select {
			case out := <-done:
				t.Fatalf("%s did not wait for the request in flight: %s", cmd[0], out)
			case <-time.After(200 * time.Millisecond):
			}
			close(release)
			assert.Equal(t, http.StatusOK, <-served)
			out := <-done
			if cmd[0] == "delete" {
				assert.Equal(t, "deleted "+id+"\n", out)
				_, err := os.Stat(filepath.Join(g.Config.SessionsDir, id))
				assert.ErrorIs(t, err, os.ErrNotExist, "the request's save did not bring the session back")
				return
			}
			assert.True(t, strings.HasPrefix(out, id+": user = \"bob\""), out)
			got := readSession(t, g.Config.SessionsDir, id)
			assert.Equal(t, "bob", got.User(), "the set is not undone")
			n, _ := got.GetInt("counter")
			assert.Equal(t, int64(1), n, "and the request's change is kept")
		})
	}
}

// writeUserSession writes a session3 session whose user is user into dir.
func writeUserSession(t *testing.T, dir, id string, user any) {
	t.Helper()
	s := quixote.NewSession(quixote.Session3Class, "", time.Now())
	require.NoError(t, s.SetUser(user))
	require.NoError(t, s.Object().SetAttr("id", id))
	data, err := s.Encode()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, id), data, 0o600))
}

// TestAdminDeleteUserObjects: a user that is an object (as the shop example's
// shop.auth.User, and the fixture's myapp.models.Account) is matched by the name
// Config.UserName gives it, and sessions that cannot be compared (a file that does
// not decode, a user object without a name) are reported and make the command fail,
// since the user may still be logged in there.
func TestAdminDeleteUserObjects(t *testing.T) {
	dir := fixtureDir(t)
	user := pickle.NewObject(pickle.Global{Module: "shop.auth", Name: "User"})
	require.NoError(t, user.SetAttr("login", "ann"))
	require.NoError(t, user.SetAttr("name", "Ann Smith"))
	writeUserSession(t, dir, "ShopAnn0001", user)
	code, out, errs := admin(t, dir, "delete", "-user", "ann")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "deleted ShopAnn0001\n")
	code, out, errs = admin(t, dir, "delete", "-user", "carol")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "deleted Q4PJ1fkwwK8\n")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "Garbage0001"), []byte("not a pickle"), 0o600))
	writeUserSession(t, dir, "Nameless001", pickle.NewObject(pickle.Global{Module: "app", Name: "Who"}))
	code, out, errs = admin(t, dir, "delete", "-user", "alice")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "deleted 3 sessions of user alice\n")
	assert.Contains(t, out, "could not compare Garbage0001: ")
	assert.Contains(t, out, "could not compare Nameless001: ")
	assert.Contains(t, errs, "2 sessions could not be compared with user alice")
	assert.FileExists(t, filepath.Join(dir, "Garbage0001"))
}

// TestAdminDeleteUserHook: Config.UserName replaces the rule.
func TestAdminDeleteUserHook(t *testing.T) {
	dir := fixtureDir(t)
	g := newTestGateway()
	g.Config.UserName = func(s *quixote.Session) string {
		if u, ok := s.UserString(); ok {
			return strings.ToUpper(u)
		}
		return "?"
	}
	require.NoError(t, os.Mkdir(dir+".locks", 0o770))
	var o, e strings.Builder
	code := g.Run(t.Context(), []string{"sessions", "-dir", dir, "delete", "-user", "ALICE"}, &o, &e)
	require.Equal(t, 0, code, e.String())
	assert.Contains(t, o.String(), "deleted 3 sessions of user ALICE\n")
}

// TestAdminNeverCreatesLockDir: set and delete take a session's turn in the running
// gateways' lock directory; when it does not exist (no gateway uses it, so it
// would order nothing) they refuse and say what to pass, and create nothing.
func TestAdminNeverCreatesLockDir(t *testing.T) {
	dir := fixtureDir(t)
	run := func(args ...string) (int, string) {
		var o, e strings.Builder
		code := newTestGateway().Run(t.Context(), append([]string{"sessions", "-dir", dir}, args...), &o, &e)
		return code, e.String()
	}
	code, errs := run("delete", "4qihCikDywk")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "no lock directory given, and the default "+dir+".locks does not exist: pass the running gateways' lock directory with -order-lock-dir DIR")
	assert.NoDirExists(t, dir+".locks")
	assert.FileExists(t, filepath.Join(dir, "4qihCikDywk"), "nothing deleted")

	other := filepath.Join(t.TempDir(), "run", "locks")
	code, errs = run("-order-lock-dir", other, "set", "4qihCikDywk", "counter=3")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "lock directory "+other+" does not exist")
	assert.NoDirExists(t, other)

	require.NoError(t, os.MkdirAll(other, 0o770))
	code, errs = run("-order-lock-dir", other, "delete", "4qihCikDywk")
	assert.Equal(t, 0, code, errs)
	assert.NoFileExists(t, filepath.Join(dir, "4qihCikDywk"))
	assert.NoDirExists(t, dir+".locks")
}
