// Package testpeer finds the real peers that interop tests run against — CPython with
// the real Quixote, session3, session4 and python-scgi packages, and nginx — and the
// repository's testdata directory.
//
// The Python packages are the ones pinned in testdata/py/requirements.txt, installed in
// the repository's .venv (or in the interpreter named by QXBRIDGE_PYTHON). A missing peer
// skips the test on a developer's machine but fails it when CI=true: a skipped interop
// test is not a passed one.
package testpeer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where missing peers are fatal.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// Missing skips t, or fails it under CI, because the named peer is not available.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required when CI=true but is not available", what)
	}
	t.Skipf("%s not available; install it to run this interop test", what)
}

// Root skips t unless the test runs as root, or fails it under CI (which runs as
// root to install the peers): why says what needs root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root ("+why+")")
	}
}

// PythonEnv names the interpreter to use instead of the repository's .venv.
const PythonEnv = "QXBRIDGE_PYTHON"

// Packages are the distributions of testdata/py/requirements.txt that every Python
// peer needs, by their import-time distribution names.
var Packages = []string{"quixote", "session3", "scgi", "session4"}

var (
	pythonOnce     sync.Once
	pythonPath     string
	pythonVersions string
	pythonErr      error
)

// findPython picks the interpreter ($QXBRIDGE_PYTHON, else .venv/bin/python under the
// repository root) and asks it for the versions of the pinned packages.
func findPython() {
	py := os.Getenv(PythonEnv)
	if py == "" {
		py = filepath.Join(RepoRoot(), ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		pythonErr = fmt.Errorf("no Python interpreter at %s (python3 -m venv .venv && .venv/bin/pip install --ignore-requires-python -r testdata/py/requirements.txt)", py)
		return
	}
	script := `import importlib, importlib.metadata as m, sys
mods = {"quixote": "quixote.publish", "session3": "session3.store.DirectorySessionStore",
        "scgi": "scgi.passfd", "session4": "session4.Session4Session"}
out = []
for dist in sys.argv[1:]:
    importlib.import_module(mods[dist])
    out.append(dist + " " + m.version(dist))
print("python %d.%d.%d, " % sys.version_info[:3] + ", ".join(out))`
	out, err := exec.Command(py, append([]string{"-c", script}, Packages...)...).CombinedOutput()
	if err != nil {
		pythonErr = fmt.Errorf("%s cannot import the pinned packages of testdata/py/requirements.txt: %v\n%s", py, err, out)
		return
	}
	pythonPath, pythonVersions = py, strings.TrimSpace(string(out))
}

// Python returns the path of the interpreter that has the real Quixote, session3,
// session4 and python-scgi installed, or skips/fails t. It logs the versions once per
// test, so every interop test's output names the real packages it ran against.
func Python(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(findPython)
	if pythonErr != nil {
		Missing(t, pythonErr.Error())
	}
	t.Logf("python peers: %s", pythonVersions)
	return pythonPath
}

// PythonVersions returns the line Python logs: the interpreter's and the pinned
// packages' versions ("" when they are not available).
func PythonVersions() string {
	pythonOnce.Do(findPython)
	return pythonVersions
}

// Nginx returns the path of the nginx binary (also looked for in /usr/sbin), or skips/fails t.
func Nginx(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	Missing(t, "nginx")
	return ""
}

// RepoRoot returns the absolute path of the repository root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Testdata returns the absolute path of a file or folder under the repository's testdata/.
func Testdata(elem ...string) string {
	return filepath.Join(append([]string{RepoRoot(), "testdata"}, elem...)...)
}

// PyScript returns the absolute path of a program under testdata/py/.
func PyScript(name string) string {
	return Testdata("py", name)
}

// PythonCmd returns an exec.Cmd running a testdata/py program with testdata/py on
// PYTHONPATH, so the application's own modules (myapp) import as in production.
func PythonCmd(t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	py := Python(t)
	cmd := exec.Command(py, append([]string{PyScript(script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+Testdata("py"), "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}
