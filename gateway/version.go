package gateway

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// modulePath is the module the gateway package belongs to.
const modulePath = "github.com/qxbridge/qxbridge"

// buildInfo is what the binary knows of its build: the qxbridge module's version (a
// program built from a tagged release, or "(devel)" when built from a checkout), the
// program's own module, the VCS revision it was built at, and the Go version.
type buildInfo struct {
	version, program, revision, goVersion string
	modified                              bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: "(devel)", program: "unknown", revision: "unknown", goVersion: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.goVersion = bi.GoVersion
	b.program = bi.Main.Path
	if bi.Main.Path == modulePath && bi.Main.Version != "" {
		b.version = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			b.version = d.Version
			if d.Replace != nil {
				b.version += " => " + d.Replace.Path
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// versionText is what -version prints.
func versionText(name string) string {
	b := readBuildInfo()
	var s strings.Builder
	fmt.Fprintf(&s, "%s: qxbridge %s\n", name, b.version)
	fmt.Fprintf(&s, "program   %s\n", b.program)
	rev := b.revision
	if b.modified {
		rev += " (modified)"
	}
	fmt.Fprintf(&s, "revision  %s\n", rev)
	fmt.Fprintf(&s, "go        %s\n", b.goVersion)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "vcs.time" || st.Key == "GOOS" || st.Key == "GOARCH" || st.Key == "-race" {
				fmt.Fprintf(&s, "%-9s %s\n", st.Key, st.Value)
			}
		}
	}
	return s.String()
}
