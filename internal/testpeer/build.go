package testpeer

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

var builds struct {
	sync.Mutex
	dir  string
	done map[string]func() (string, error)
}

// Build builds the main package pkg of this module ("./cmd/scgi-gateway") once per
// test binary and returns the program's path, for tests that run it as its users do.
// A failed build fails t. RemoveBuilds, from TestMain, deletes the programs.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	builds.Lock()
	if builds.done == nil {
		builds.done = map[string]func() (string, error){}
	}
	build, ok := builds.done[pkg]
	if !ok {
		build = sync.OnceValues(func() (string, error) {
			builds.Lock()
			if builds.dir == "" {
				dir, err := os.MkdirTemp("", "qxbuild")
				if err != nil {
					builds.Unlock()
					return "", err
				}
				builds.dir = dir
			}
			dir := builds.dir
			builds.Unlock()
			out := filepath.Join(dir, path.Base(pkg))
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = RepoRoot()
			if b, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
			}
			return out, nil
		})
		builds.done[pkg] = build
	}
	builds.Unlock()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// RemoveBuilds deletes what Build built. Call it from TestMain after m.Run.
func RemoveBuilds() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir = ""
		builds.done = nil
	}
}
