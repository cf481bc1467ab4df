package testpeer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTestdataLayout(t *testing.T) {
	for _, p := range []string{Testdata("session3", "session3-login.pkl"), Testdata("scgi", "nginx-scgi-request.bin"), PyScript("myapp")} {
		_, err := os.Stat(p)
		require.NoError(t, err, p)
	}
}

// TestPythonRunsRealPackages checks that the programs under testdata/py, run with
// testdata/py on PYTHONPATH, import the installed session3, Quixote and python-scgi
// (nothing under testdata shadows them) and that the session fixtures load with them.
func TestPythonRunsRealPackages(t *testing.T) {
	script := `import os, pickle, sys
import quixote.session, scgi.scgi_server, session3.Session, session4.Session4Session
for mod in (quixote.session, scgi.scgi_server, session3.Session, session4.Session4Session):
    if os.path.realpath(mod.__file__).startswith(os.path.realpath(sys.argv[1]) + os.sep):
        sys.exit("%s is shadowed by %s" % (mod.__name__, mod.__file__))
    print(mod.__name__, mod.__file__)
for name in sorted(os.listdir(sys.argv[2])):
    with open(os.path.join(sys.argv[2], name), "rb") as f:
        obj = pickle.load(f)
    cls = type(obj)
    if not hasattr(obj, "id") or not hasattr(obj, "_creation_time"):
        sys.exit("%s: not a session" % name)
    print(name, cls.__module__ + "." + cls.__qualname__, sys.modules[cls.__module__].__file__)
`
	cmd := PythonCmd(t, "myapp/models.py")                                          // PythonCmd's environment,
	cmd.Args = append(cmd.Args[:1], "-c", script, Testdata(), Testdata("session3")) // with the program inline
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	t.Logf("%s", out)
	require.Contains(t, string(out), "session3-login.pkl session3.Session.Session")
	require.Contains(t, string(out), "quixote-session.pkl quixote.session.Session")
	require.Contains(t, string(out), filepath.Join("site-packages", "session3", "Session.py"))
}

func TestOutputConcurrentWrites(t *testing.T) {
	var o Output
	done := make(chan struct{})
	for range 4 {
		go func() {
			for range 100 {
				o.Write([]byte("x"))
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	require.Len(t, o.String(), 400)
}
