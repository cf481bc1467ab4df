package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
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
// BenchmarkVsCPython compares them with session3's steps in CPython on the same bytes,
// in the same run.

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

// BenchmarkSaveWays is Save of one fixture through each way of naming the new file:
// a file without a name linked with AT_EMPTY_PATH (where permitted) or through
// /proc/self/fd, a named temporary file (the fallback), and a file without a name
// in a staging directory; then with a rename(2) over the session file instead of
// renameat2(RENAME_EXCHANGE) (where that is missing), and WithWriteOut.
func BenchmarkSaveWays(b *testing.B) {
	ctx := context.Background()
	data := fixture(b, "session3-counter-tokens.pkl")
	for _, way := range []string{"unnamed", "proc", "named", "staging", "rename", "writeout"} {
		b.Run(way, func(b *testing.B) {
			var d *Directory
			switch way {
			case "staging":
				d = openTemp(b, WithStagingDir(b.TempDir()))
			case "writeout":
				d = openTemp(b, WithWriteOut())
			default:
				d = openTemp(b)
			}
			d.linkByProc.Store(way == "proc")
			d.noUnnamed.Store(way == "named")
			d.noExchange.Store(way == "rename")
			require.NoError(b, d.Save(ctx, "bench", data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Save(ctx, "bench", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVsCPython compares, for each fixture, Go's Load, Save and Load+Save with
// CPython doing session3's steps on the same bytes in the same directory
// (testdata/py/store_bench.py): file-* is the file work alone (the same work as Go's),
// session3-* the real load_session/save_session with pickling. save-writeout is Go's
// Save with WithWriteOut, and save-inplace with WithInPlace (each save writes over
// the file), against the same CPython saves. The two sides take
// turns for five rounds of about 0.3 s each, and the medians are reported in ns/op:
// go-ns/op, py-file-ns/op, py-session3-ns/op and go/py-file. b.N is not used: one run
// of the benchmark is the whole comparison.
func BenchmarkVsCPython(b *testing.B) {
	ops := map[string]func(ctx context.Context, d *Directory, data []byte) error{
		"load": func(ctx context.Context, d *Directory, _ []byte) error {
			_, err := d.Load(ctx, "bench")
			return err
		},
		"save": func(ctx context.Context, d *Directory, data []byte) error {
			return d.Save(ctx, "bench", data)
		},
		"loadsave": func(ctx context.Context, d *Directory, _ []byte) error {
			got, err := d.Load(ctx, "bench")
			if err == nil {
				err = d.Save(ctx, "bench", got)
			}
			return err
		},
	}
	ops["save-writeout"] = ops["save"]
	ops["save-inplace"] = ops["save"]
	const rounds, slice = 5, 300 * time.Millisecond
	for _, op := range []string{"load", "save", "save-writeout", "save-inplace", "loadsave"} {
		pyOp, _, _ := strings.Cut(op, "-")
		b.Run(op, func(b *testing.B) {
			for _, name := range fixtureNames(b) {
				b.Run(strings.TrimSuffix(name, ".pkl"), func(b *testing.B) {
					ctx := context.Background()
					data := fixture(b, name)
					var opts []Option
					switch op {
					case "save-writeout":
						opts = append(opts, WithWriteOut())
					case "save-inplace":
						opts = append(opts, WithInPlace())
					}
					d := openTemp(b, opts...)
					require.NoError(b, d.Save(ctx, "bench", data))
					ino := inode(b, filepath.Join(d.Dir(), "bench"))
					var goNs, pyFileNs, pyS3Ns []float64
					for range rounds {
						n, start := 0, time.Now()
						for time.Since(start) < slice {
							require.NoError(b, ops[op](ctx, d, data))
							n++
						}
						goNs = append(goNs, float64(time.Since(start).Nanoseconds())/float64(n))
						pyFileNs = append(pyFileNs, cpythonNs(b, "file-"+pyOp, d.Dir(), name, slice))
						pyS3Ns = append(pyS3Ns, cpythonNs(b, "session3-"+pyOp, d.Dir(), name, slice))
					}
					if op == "save-inplace" && d.overwrite {
						require.Equal(b, ino, inode(b, filepath.Join(d.Dir(), "bench")), "every save was in place")
					}
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(median(goNs), "go-ns/op")
					b.ReportMetric(median(pyFileNs), "py-file-ns/op")
					b.ReportMetric(median(pyS3Ns), "py-session3-ns/op")
					b.ReportMetric(median(goNs)/median(pyFileNs), "go/py-file")
					b.ReportMetric(median(goNs)/median(pyS3Ns), "go/py-session3")
				})
			}
		})
	}
}

// cpythonNs runs store_bench.py for about d and returns the ns/op it measured.
func cpythonNs(b *testing.B, op, dir, fixtureName string, d time.Duration) float64 {
	b.Helper()
	cmd := testpeer.PythonCmd(b, "store_bench.py", op, strconv.FormatFloat(d.Seconds(), 'f', 3, 64), dir,
		testpeer.Testdata("session3", fixtureName))
	if nfsLocks {
		cmd.Env = append(cmd.Env, "QXBRIDGE_STORE_LOCKS=posix")
	}
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s", out)
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(b, err, "%s", out)
	return ns
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
	// Stop every CPython process before reading any report: one left running saves
	// back to back, and the other's load_session, which sleeps 100 ms whenever it
	// meets the file truncated, can miss the moments it is whole for a long time.
	for _, p := range procs {
		require.NoError(b, p.cmd.Process.Signal(syscall.SIGTERM))
	}
	var pyOps, pyErrors, pySeconds float64
	for _, p := range procs {
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
