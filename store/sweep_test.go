package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sweepSeconds is how long each sweep test lets CPython sweep while Go saves.
const sweepSeconds = "2"

// sweepReport is what a sweeploop peer counted: sweeps made, sweeps that raised
// FileNotFoundError, that raised anything else, and (liststat only) listings that
// held a temporary file's name.
type sweepReport struct {
	Sweeps, Raised, Other, Temps int
}

func (r sweepReport) String() string {
	return fmt.Sprintf("%d of %d sweeps raised (%.3f%%)", r.Raised, r.Sweeps, 100*float64(r.Raised)/float64(max(r.Sweeps, 1)))
}

// sweepDuringSaves saves sessions in d in a loop while two CPython processes sweep the
// session directory for sweepSeconds, again and again: one with session3's
// delete_old_sessions (with a limit so high that it deletes nothing), one listing and
// stating only. The directory holds ten sessions; Go replaces four of them in turn
// and creates a new one every 64 saves, twenty at most. Nothing is deleted: a
// session deleted during a sweep makes delete_old_sessions raise too. It returns the number of saves and the
// reports of the peers, by kind ("session3", "liststat").
func sweepDuringSaves(t *testing.T, d *Directory) (int, map[string]sweepReport) {
	ctx := context.Background()
	data := fixture(t, "session3-login.pkl")
	for i := range 10 {
		require.NoError(t, d.Save(ctx, fmt.Sprintf("s%d", i), data))
	}
	kinds := []string{"session3", "liststat"}
	results := make(chan [2]string, len(kinds))
	for _, k := range kinds {
		p := startPeer(t, "sweeploop", d.Dir(), sweepSeconds, k)
		p.expect(t, "ready")
		go func() { results <- [2]string{k, p.next(t, 30*time.Second)} }()
	}
	reports := map[string]sweepReport{}
	saves, created := 0, 0
	for len(reports) < len(kinds) {
		select {
		case r := <-results:
			var rep sweepReport
			require.NoError(t, json.Unmarshal([]byte(r[1]), &rep), r[1])
			reports[r[0]] = rep
			continue
		default:
		}
		id := fmt.Sprintf("s%d", saves%4)
		if saves%64 == 63 && created < 20 {
			id = fmt.Sprintf("new%d", created)
			created++
		}
		require.NoError(t, d.Save(ctx, id, data))
		saves++
	}
	for kind, r := range reports {
		require.Positive(t, r.Sweeps, kind)
		assert.Zero(t, r.Other, "%s: sweeps that raised something else than FileNotFoundError", kind)
	}
	return saves, reports
}

// TestPythonSweepWithStagingDir: with WithStagingDir, CPython sweeping the session
// directory the way session3's delete_old_sessions does (listdir, then stat each
// name) while Go saves in a loop never raises, and never lists a temporary file: the
// only names that appear in the session directory are sessions'.
//
// The same check fails for a store that writes its temporary files in the session
// directory (TestPythonSweepWithoutStagingDir), as this package did before it had
// files without a name and staging directories.
func TestPythonSweepWithStagingDir(t *testing.T) {
	staging := t.TempDir()
	d := openTemp(t, WithStagingDir(staging))
	saves, reports := sweepDuringSaves(t, d)
	t.Logf("with a staging directory, %d Go saves: delete_old_sessions: %v; listdir+stat: %v", saves, reports["session3"], reports["liststat"])
	assert.Greater(t, saves, 100)
	for kind, r := range reports {
		assert.Zero(t, r.Raised, "%s: %v", kind, r)
		assert.Zero(t, r.Temps, "%s: listings with a temporary file", kind)
	}
	assert.Empty(t, entries(t, staging))
}

// TestPythonSweepWithoutStagingDir measures how often the same sweeps raise without a
// staging directory: with named temporary files in the session directory (the
// fallback where there is no O_TMPFILE, and how this package saved before), whose
// names are listed for the whole save, the check must catch them; with files
// without a name (the default), which get a temporary name only for the two system
// calls before the rename, it raises far less often, but can.
func TestPythonSweepWithoutStagingDir(t *testing.T) {
	named := openTemp(t)
	named.noUnnamed.Store(true)
	saves, reports := sweepDuringSaves(t, named)
	t.Logf("named temporary files, %d Go saves: delete_old_sessions: %v; listdir+stat: %v (listings with a temporary file: %d of %d)",
		saves, reports["session3"], reports["liststat"], reports["liststat"].Temps, reports["liststat"].Sweeps)
	assert.Positive(t, reports["session3"].Raised+reports["liststat"].Raised, "the check catches temporary files listed in the session directory")

	unnamed := openTemp(t)
	saves, reports = sweepDuringSaves(t, unnamed)
	if unnamed.noUnnamed.Load() {
		t.Logf("no O_TMPFILE on this filesystem: saves used named temporary files")
	}
	t.Logf("files without a name, %d Go saves: delete_old_sessions: %v; listdir+stat: %v (listings with a temporary file: %d of %d)",
		saves, reports["session3"], reports["liststat"], reports["liststat"].Temps, reports["liststat"].Sweeps)
}
