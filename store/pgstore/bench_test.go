package pgstore_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// BenchmarkVsPython runs, for each session3 fixture, a session's Load+Save against
// one throw-away PostgreSQL server from Go (pgstore) and from CPython (the
// qxbridge-pgstore package, testdata/py/pgstore_bench.py), and Go's directory store
// on the same bytes for reference. The sides take turns for five rounds of about
// 0.3 s each; the medians are reported in ns/op: go-ns/op (bytes),
// go-decode-ns/op (bytes plus quixote.Decode and Encode, what a Go page does),
// py-bytes-ns/op (the same work as go-ns/op), py-session3-ns/op
// (load_session+save_session, with unpickling and pickling), go-dir-ns/op, and the
// ratios. b.N is not used: one run of the benchmark is the whole comparison.
func BenchmarkVsPython(b *testing.B) {
	testpeer.Python(b)
	srv := testpg.Start(b)
	ctx := context.Background()
	const table = "bench_sessions"
	s, err := pgstore.Open(ctx, srv.DSN, pgstore.WithTable(table))
	require.NoError(b, err)
	defer s.Close()
	names, err := filepath.Glob(testpeer.Testdata("session3", "*.pkl"))
	require.NoError(b, err)
	const rounds, slice = 5, 300 * time.Millisecond
	for _, path := range names {
		name := filepath.Base(path)
		b.Run(strings.TrimSuffix(name, ".pkl"), func(b *testing.B) {
			data, err := os.ReadFile(path)
			require.NoError(b, err)
			dir, err := store.Open(b.TempDir())
			require.NoError(b, err)
			require.NoError(b, s.Save(ctx, "gobench", data))
			require.NoError(b, dir.Save(ctx, "gobench", data))
			loop := func(fn func() error) float64 {
				n, start := 0, time.Now()
				for time.Since(start) < slice {
					require.NoError(b, fn())
					n++
				}
				return float64(time.Since(start).Nanoseconds()) / float64(n)
			}
			var goNs, goDecNs, dirNs, pyBytesNs, pyS3Ns []float64
			for range rounds {
				goNs = append(goNs, loop(func() error {
					got, err := s.Load(ctx, "gobench")
					if err == nil {
						err = s.Save(ctx, "gobench", got)
					}
					return err
				}))
				goDecNs = append(goDecNs, loop(func() error {
					got, err := s.Load(ctx, "gobench")
					if err != nil {
						return err
					}
					sess, err := quixote.Decode(got)
					if err != nil {
						return err
					}
					enc, err := sess.Encode()
					if err != nil {
						return err
					}
					return s.Save(ctx, "gobench", enc)
				}))
				dirNs = append(dirNs, loop(func() error {
					got, err := dir.Load(ctx, "gobench")
					if err == nil {
						err = dir.Save(ctx, "gobench", got)
					}
					return err
				}))
				pyBytesNs = append(pyBytesNs, pythonNs(b, srv, "bytes-loadsave", table, path, slice))
				pyS3Ns = append(pyS3Ns, pythonNs(b, srv, "session3-loadsave", table, path, slice))
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(median(goNs), "go-ns/op")
			b.ReportMetric(median(goDecNs), "go-decode-ns/op")
			b.ReportMetric(median(pyBytesNs), "py-bytes-ns/op")
			b.ReportMetric(median(pyS3Ns), "py-session3-ns/op")
			b.ReportMetric(median(dirNs), "go-dir-ns/op")
			b.ReportMetric(median(goNs)/median(pyBytesNs), "go/py-bytes")
			b.ReportMetric(median(goDecNs)/median(pyS3Ns), "go-decode/py-session3")
		})
	}
}

// pythonNs runs pgstore_bench.py for about d and returns the ns/op it measured.
func pythonNs(b *testing.B, srv *testpg.Server, op, table, src string, d time.Duration) float64 {
	b.Helper()
	cmd := testpeer.PythonCmd(b, "pgstore_bench.py", op, strconv.FormatFloat(d.Seconds(), 'f', 3, 64),
		srv.DSN, table, src)
	cmd.Env = append(cmd.Env, "PYTHONPATH="+testpeer.Testdata("py")+string(os.PathListSeparator)+
		filepath.Join(testpeer.RepoRoot(), "python", "src"))
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
