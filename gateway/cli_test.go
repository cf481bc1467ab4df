package gateway

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// TestCLIErrorsOnce: a wrong flag or command is said once, in one or two lines, with
// where the usage is; not followed by the whole usage.
func TestCLIErrorsOnce(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := newTestGateway().Run(t.Context(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, _, stderr := run("-bogus")
	assert.Equal(t, 2, code)
	assert.Equal(t, "scgi-gateway: flag provided but not defined: -bogus\nrun scgi-gateway -h for the flags\n", stderr)

	code, _, stderr = run("-route", "nope")
	assert.Equal(t, 2, code)
	assert.Equal(t, 2, strings.Count(stderr, "\n"), stderr)

	code, _, stderr = run("sessions", "-bogus", "list")
	assert.Equal(t, 2, code)
	assert.Equal(t, "scgi-gateway sessions: flag provided but not defined: -bogus\nrun scgi-gateway sessions -h for the usage\n", stderr)

	dir := t.TempDir()
	code, _, stderr = run("sessions", "list", "-dir", dir)
	assert.Equal(t, 2, code)
	assert.Equal(t, "scgi-gateway sessions: -dir goes before the command (usage: scgi-gateway sessions [-sessions DIR] list [-json])\n", stderr)
	assert.NotContains(t, stderr, "Usage of")

	code, _, stderr = run("sessions", "sweep", "-older", "soon")
	assert.Equal(t, 2, code)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)

	code, stdout, _ := run("sessions", "list", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "usage: scgi-gateway sessions [-sessions DIR] list [-json]\n")
	assert.Contains(t, stdout, "-json")

	code, _, stderr = run("shadow", "-bogus")
	assert.Equal(t, 2, code)
	assert.Equal(t, 2, strings.Count(stderr, "\n"), stderr)
}

// TestSessionsFlagLikeServing: the sessions commands take the store as serving does,
// -sessions, and -dir as well.
func TestSessionsFlagLikeServing(t *testing.T) {
	dir := fixtureDir(t)
	for _, f := range []string{"-sessions", "-dir"} {
		var stdout, stderr strings.Builder
		code := newTestGateway().Run(t.Context(), []string{"sessions", f, dir, "list"}, &stdout, &stderr)
		assert.Equal(t, 0, code, stderr.String())
		assert.Regexp(t, `(?m)^4qihCikDywk +alice `, stdout.String(), f)
	}
}

// TestShadowReportWithoutCandidates: a report with nothing to report says so and
// fails, rather than printing nothing.
func TestShadowReportWithoutCandidates(t *testing.T) {
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", t.TempDir())
	for _, args := range [][]string{{"report"}, {"report", "-json"}, {"report", "/cart/"}} {
		var stdout, stderr strings.Builder
		code := newTestGateway().Run(t.Context(), append([]string{"shadow", "-metrics", g.addr("metrics")}, args...), &stdout, &stderr)
		assert.Equal(t, 1, code, "%v", args)
		assert.Empty(t, stdout.String())
		assert.Contains(t, stderr.String(), "no route", "%v", args)
		assert.Contains(t, stderr.String(), "has a Go candidate", "%v", args)
		assert.NotContains(t, stderr.String(), "routes with one: )", "%v", args)
	}
}

// TestFlagUsage: every flag's usage reads in -h as meant: a backquoted word in a
// usage string is the flag's argument name, so there is at most one, an upper-case
// name.
func TestFlagUsage(t *testing.T) {
	g := newTestGateway()
	cfg := g.Config.clone()
	var st flagState
	g.flagSet(&cfg, &st, io.Discard).VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		assert.NotContains(t, usage, "`", "-%s", f.Name)
		if strings.Contains(f.Usage, "`") {
			assert.Regexp(t, `^[A-Z][A-Z=>_,]*$`, name, "-%s", f.Name)
		}
	})
}

// TestREADMEFlags keeps README.md's gateway section true to -h: its flag table names
// every flag the serve command has (and none it does not), and its usage block every
// command.
func TestREADMEFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "README.md"))
	require.NoError(t, err)
	readme := string(b)
	_, section, ok := strings.Cut(readme, "\n## The gateway\n")
	require.True(t, ok)
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "\n| flag | |\n|---|---|\n")
	require.True(t, ok, "the flag table")
	table, _, _ = strings.Cut(table, "\n\n")
	var documented []string
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(row, " | ")
		require.GreaterOrEqual(t, len(cells), 2, row)
		for _, m := range regexp.MustCompile("`(-[a-z-]+)").FindAllStringSubmatch(cells[0], -1) {
			documented = append(documented, m[1])
		}
	}
	g := newTestGateway()
	cfg := g.Config.clone()
	var st flagState
	var flags []string
	g.flagSet(&cfg, &st, io.Discard).VisitAll(func(f *flag.Flag) { flags = append(flags, "-"+f.Name) })
	slices.Sort(documented)
	assert.Equal(t, flags, documented, "README.md's flag table lists the flags of -h, each once")

	usage, _, ok := strings.Cut(section, "\n```\n\n")
	require.True(t, ok)
	for _, cmd := range []string{"scgi-gateway [flags]", "scgi-gateway sessions [-sessions", "scgi-gateway sessions migrate -from", "scgi-gateway shadow [-metrics ADDR | -config FILE] report"} {
		assert.Contains(t, usage, cmd)
	}
}
