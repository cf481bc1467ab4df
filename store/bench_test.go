package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
)

// The Go benchmarks time Load, Save and Load+Save of each session3 fixture's bytes;
// BenchmarkCPython times session3's steps on the same bytes in CPython, in the same
// run (store_bench.py reports its own ns/op, without interpreter start-up).

func benchFixtures(b *testing.B, fn func(b *testing.B, d *Directory, data []byte)) {
	for _, name := range fixtureNames(b) {
		data := fixture(b, name)
		b.Run(strings.TrimSuffix(name, ".pkl"), func(b *testing.B) {
			d := openTemp(b)
			require.NoError(b, d.Save(context.Background(), "bench", data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			fn(b, d, data)
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	benchFixtures(b, func(b *testing.B, d *Directory, data []byte) {
		for b.Loop() {
			if _, err := d.Load(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	benchFixtures(b, func(b *testing.B, d *Directory, data []byte) {
		for b.Loop() {
			if err := d.Save(ctx, "bench", data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLoadSave(b *testing.B) {
	ctx := context.Background()
	benchFixtures(b, func(b *testing.B, d *Directory, data []byte) {
		for b.Loop() {
			got, err := d.Load(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Save(ctx, "bench", got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSaveSync is Save with WithSync (fsync of the file and the directory).
func BenchmarkSaveSync(b *testing.B) {
	ctx := context.Background()
	data := fixture(b, "session3-counter-tokens.pkl")
	d := openTemp(b, WithSync())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := d.Save(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCPython runs testdata/py/store_bench.py for b.N iterations and reports the
// ns/op it measured: file-* are session3's file steps on the bytes (the same work as
// the Go benchmarks), session3-* its real load_session/save_session with pickling.
func BenchmarkCPython(b *testing.B) {
	for _, op := range []string{"file-load", "file-save", "file-loadsave", "session3-load", "session3-save", "session3-loadsave"} {
		b.Run(op, func(b *testing.B) {
			for _, name := range fixtureNames(b) {
				b.Run(strings.TrimSuffix(name, ".pkl"), func(b *testing.B) {
					cmd := testpeer.PythonCmd(b, "store_bench.py", op, strconv.Itoa(b.N), b.TempDir(),
						testpeer.Testdata("session3", name))
					out, err := cmd.CombinedOutput()
					require.NoError(b, err, "%s", out)
					ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
					require.NoError(b, err, "%s", out)
					b.ReportMetric(ns, "ns/op")
				})
			}
		})
	}
}

// BenchmarkContended: Go goroutines (GOMAXPROCS of them) and two CPython processes
// running session3's load_session + save_session all work on one session. Every Go
// load must return the session's exact bytes and every CPython load a session; the
// CPython throughput and both sides' errors are reported.
func BenchmarkContended(b *testing.B) {
	ctx := context.Background()
	d := openTemp(b)
	const id = "contended"
	// The session as CPython pickles it, so that every writer writes the same bytes.
	out, err := peer(b, "save", d.Dir(), id, testpeer.Testdata("session3", "session3-login.pkl")).CombinedOutput()
	require.NoError(b, err, "%s", out)
	data, err := os.ReadFile(filepath.Join(d.Dir(), id))
	require.NoError(b, err)

	var procs []*runningPeer
	for range 2 {
		p := startPeer(b, "contend", d.Dir(), id, "0")
		p.expect(b, "ready")
		procs = append(procs, p)
	}
	var goErrors atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			got, err := d.Load(ctx, id)
			if err != nil || string(got) != string(data) {
				goErrors.Add(1)
				b.Errorf("Go load: %d bytes, %v", len(got), err)
				continue
			}
			if err := d.Save(ctx, id, got); err != nil {
				goErrors.Add(1)
				b.Errorf("Go save: %v", err)
			}
		}
	})
	b.StopTimer()
	var pyOps, pyErrors, pySeconds float64
	for _, p := range procs {
		require.NoError(b, p.cmd.Process.Signal(syscall.SIGTERM))
		var c struct {
			Loads, Saves, Errors, Missing int
			Seconds                       float64
		}
		line := p.next(b, 30*time.Second)
		require.NoError(b, json.Unmarshal([]byte(line), &c), line)
		pyOps += float64(c.Saves)
		pyErrors += float64(c.Errors + c.Missing)
		pySeconds = max(pySeconds, c.Seconds)
	}
	b.ReportMetric(pyOps/pySeconds, "py-loadsaves/s")
	b.ReportMetric(pyErrors, "py-errors")
	b.ReportMetric(float64(goErrors.Load()), "go-errors")
	if pyErrors > 0 {
		b.Errorf("CPython processes had %v errors", pyErrors)
	}
}
