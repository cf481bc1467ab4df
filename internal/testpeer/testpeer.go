// Package testpeer finds the real peers that interop tests run against — CPython and
// nginx — and the repository's testdata directory.
//
// A missing peer skips the test on a developer's machine but fails it when CI=true:
// a skipped interop test is not a passed one.
package testpeer

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// Python returns the path of the python3 interpreter, or skips/fails t.
func Python(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		Missing(t, "python3")
	}
	return p
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
// PYTHONPATH, so the stand-in modules (session3, quixote, myapp) import as in production.
func PythonCmd(t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	py := Python(t)
	cmd := exec.Command(py, append([]string{PyScript(script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+Testdata("py"), "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}
