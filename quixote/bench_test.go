package quixote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/store"
)

// benchSessions are the sessions the benchmarks run on: a typical one (user,
// counter, two form tokens) and a rich application one.
var benchSessions = []struct{ fixture, id string }{
	{"session3-counter-tokens.pkl", "4qihCikDywk"},
	{"subclass-rich.pkl", "Q4PJ1fkwwK8"},
}

// benchDir makes a session directory holding one fixture under its id, in
// $QX_BENCH_DIR when set (e.g. a tmpfs, to leave the disk out), else a temporary
// directory.
func benchDir(tb testing.TB, name, id string) (string, *store.Directory) {
	tb.Helper()
	parent := tb.TempDir()
	if d := os.Getenv("QX_BENCH_DIR"); d != "" {
		var err error
		parent, err = os.MkdirTemp(d, "qxbench")
		require.NoError(tb, err)
		tb.Cleanup(func() { os.RemoveAll(parent) })
	}
	dir := filepath.Join(parent, "sessions")
	st, err := store.Open(dir, store.WithCreate())
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(filepath.Join(dir, id), fixture(tb, name), 0o644))
	return dir, st
}

// requestCycle is the session work of one request as session3 does it: load the
// file, decode, touch the access time, encode, save (always, as session3 does).
func requestCycle(ctx context.Context, st Store, id string) error {
	data, err := st.Load(ctx, id)
	if err != nil {
		return err
	}
	s, err := Decode(data, shopClass)
	if err != nil {
		return err
	}
	s.Touch(time.Now())
	out, err := s.Encode()
	if err != nil {
		return err
	}
	return st.Save(ctx, id, out)
}

// BenchmarkRequestCycle measures load + decode + touch + encode + save of a session
// file in a real session directory.
func BenchmarkRequestCycle(b *testing.B) {
	for _, bs := range benchSessions {
		b.Run(bs.fixture, func(b *testing.B) {
			_, st := benchDir(b, bs.fixture, bs.id)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := requestCycle(ctx, st, bs.id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodec measures decode + encode alone, without the filesystem.
func BenchmarkCodec(b *testing.B) {
	for _, bs := range benchSessions {
		b.Run(bs.fixture, func(b *testing.B) {
			data := fixture(b, bs.fixture)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				s, err := Decode(data, shopClass)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMiddleware measures a whole request through Manager.Handler on a real
// session directory: a read-only page (the unchanged session is not rewritten) and
// a page that changes the session (rewritten every time).
func BenchmarkMiddleware(b *testing.B) {
	for _, path := range []string{"/status", "/counter"} {
		b.Run(path[1:], func(b *testing.B) {
			_, st := benchDir(b, "session3-counter-tokens.pkl", "4qihCikDywk")
			m := NewManager(st)
			h := m.Handler(testApp())
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Cookie", `QX_session="4qihCikDywk"`)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// TestCompareCPython times the per-request session work in Go and in CPython
// (testdata/py/quixote_bench.py: load_session, _set_access_time(1), save_session
// with session3's DirectorySessionStore) on the same file in the same run, and
// prints both. Go and CPython take turns for several rounds and the medians are
// reported, because on a disk the kernel's writeback makes single runs vary
// severalfold. It only runs with QX_BENCH=1 (see BENCHMARKS.md): it measures, it
// asserts nothing about speed.
func TestCompareCPython(t *testing.T) {
	if os.Getenv("QX_BENCH") != "1" {
		t.Skip("benchmark comparison; run with QX_BENCH=1")
	}
	testpeer.Python(t)
	n, rounds := envInt("QX_BENCH_N", 1000), envInt("QX_BENCH_ROUNDS", 5)
	for _, bs := range benchSessions {
		dir, st := benchDir(t, bs.fixture, bs.id)
		ctx := context.Background()
		m := NewManager(st)
		m.Classes = []Class{shopClass}
		h := m.Handler(testApp())
		timeGo := func(f func()) float64 {
			start := time.Now()
			for range n {
				f()
			}
			return float64(time.Since(start).Nanoseconds()) / float64(n)
		}
		page := func(path string) func() {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Cookie", `QX_session="`+bs.id+`"`)
			return func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		}
		measures := []struct {
			what string
			f    func()
		}{
			{"load+decode+touch+encode+save", func() { require.NoError(t, requestCycle(ctx, st, bs.id)) }},
			// A page that changes the session: saved every time.
			{"middleware GET /counter", page("/counter")},
			// A read-only page: unchanged bytes are not rewritten (session3 rewrites).
			{"middleware GET /status", page("/status")},
		}
		goNs := make([][]float64, len(measures))
		var pyNs []float64
		for range rounds {
			for i, ms := range measures {
				goNs[i] = append(goNs[i], timeGo(ms.f))
			}
			out, err := testpeer.PythonCmd(t, "quixote_bench.py", dir, bs.id, strconv.Itoa(n)).Output()
			require.NoError(t, err)
			var py struct {
				NsPerOp float64 `json:"ns_per_op"`
			}
			require.NoError(t, json.Unmarshal(out, &py), "%s", out)
			pyNs = append(pyNs, py.NsPerOp)
		}
		// The file is still a session both sides read.
		data, err := st.Load(ctx, bs.id)
		require.NoError(t, err)
		_, err = Decode(data, shopClass)
		require.NoError(t, err)

		py := median(pyNs)
		for i, ms := range measures {
			g := median(goNs[i])
			line := fmt.Sprintf("%-28s %-30s go %8.1f µs/op  cpython %8.1f µs/op  go/cpython %.2f  (median of %d rounds of %d)",
				bs.fixture, ms.what, g/1e3, py/1e3, g/py, rounds, n)
			t.Log(line)
			fmt.Println(line)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
