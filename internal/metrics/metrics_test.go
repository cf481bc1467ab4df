package metrics

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func text(t *testing.T, r *Registry) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, r.WriteText(&b))
	return b.String()
}

func TestCounterVecText(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("http_requests_total", "Requests by route\nand status.", "route", "status")
	c.With("/b", "200").Inc()
	c.With("/a", "404").Add(2)
	c.With("/a", "200").Inc()
	c.With("/a", "200").Add(0.5)
	c.With("/a", "200").Add(-3) // ignored: counters only go up
	assert.Equal(t, `# HELP http_requests_total Requests by route\nand status.
# TYPE http_requests_total counter
http_requests_total{route="/a",status="200"} 1.5
http_requests_total{route="/a",status="404"} 2
http_requests_total{route="/b",status="200"} 1
`, text(t, r))
}

func TestCounterWithoutLabels(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("rejected_total", "Rejected.")
	assert.Contains(t, text(t, r), "# TYPE rejected_total counter\n", "registered before first use")
	c.Inc()
	c.Inc()
	assert.Equal(t, "# HELP rejected_total Rejected.\n# TYPE rejected_total counter\nrejected_total 2\n", text(t, r))
	assert.Equal(t, 2.0, c.Value())
}

func TestLabelEscaping(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("x_total", `back\slash`, "path")
	c.With("a\"b\\c\nd\xff").Inc()
	assert.Equal(t, "# HELP x_total back\\\\slash\n# TYPE x_total counter\n"+
		`x_total{path="a\"b\\c\nd`+"\uFFFD"+`"} 1`+"\n", text(t, r))
}

func TestHistogramBuckets(t *testing.T) {
	r := NewRegistry()
	h := r.NewHistogramVec("latency_seconds", "Latency.", []float64{0.1, 1}, "route")
	for _, v := range []float64{0.05, 0.1, 0.5, 1, 3} {
		h.With("/").Observe(v)
	}
	assert.Equal(t, `# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{route="/",le="0.1"} 2
latency_seconds_bucket{route="/",le="1"} 4
latency_seconds_bucket{route="/",le="+Inf"} 5
latency_seconds_sum{route="/"} 4.65
latency_seconds_count{route="/"} 5
`, text(t, r))
	assert.Equal(t, uint64(5), h.With("/").Count())
}

func TestHistogramWithoutLabels(t *testing.T) {
	r := NewRegistry()
	h := r.NewHistogramVec("d", "D.", []float64{1})
	h.With().Observe(2)
	assert.Contains(t, text(t, r), "d_bucket{le=\"1\"} 0\nd_bucket{le=\"+Inf\"} 1\nd_sum 2\nd_count 1\n")
}

func TestFuncMetrics(t *testing.T) {
	r := NewRegistry()
	up := 1.0
	r.NewGaugeFunc("backend_up", "Up.", []string{"backend"}, func() []Sample {
		return []Sample{{[]string{"b:2"}, 0}, {[]string{"a:1"}, up}, {[]string{"wrong", "arity"}, 7}}
	})
	r.NewCounterFunc("backend_failures_total", "Failures.", []string{"backend"}, func() []Sample {
		return []Sample{{[]string{"a:1"}, 3}}
	})
	assert.Equal(t, `# HELP backend_up Up.
# TYPE backend_up gauge
backend_up{backend="a:1"} 1
backend_up{backend="b:2"} 0
# HELP backend_failures_total Failures.
# TYPE backend_failures_total counter
backend_failures_total{backend="a:1"} 3
`, text(t, r))
	up = 0
	assert.Contains(t, text(t, r), `backend_up{backend="a:1"} 0`, "read at scrape time")
}

func TestSpecialFloats(t *testing.T) {
	r := NewRegistry()
	r.NewGaugeFunc("g", "G.", nil, func() []Sample { return []Sample{{nil, math.Inf(1)}} })
	assert.Contains(t, text(t, r), "\ng +Inf\n")
	assert.Equal(t, "NaN", formatFloat(math.NaN()))
	assert.Equal(t, "-Inf", formatFloat(math.Inf(-1)))
	assert.Equal(t, "1e-05", formatFloat(0.00001))
}

func TestRegistrationChecks(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("ok_total", "ok")
	assert.PanicsWithValue(t, "metrics: ok_total registered twice", func() { r.NewCounter("ok_total", "again") })
	assert.Panics(t, func() { r.NewCounter("bad-name", "") })
	assert.Panics(t, func() { r.NewCounterVec("c_total", "", "le") })
	assert.Panics(t, func() { r.NewCounterVec("d_total", "", "a", "a") })
	assert.Panics(t, func() { r.NewCounterVec("e_total", "", "__x") })
	assert.Panics(t, func() { r.NewHistogramVec("h", "", []float64{2, 1}) })
	v := r.NewCounterVec("f_total", "", "a", "b")
	assert.Panics(t, func() { v.With("only one") })
}

func TestConcurrentUpdatesAndScrapes(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("c_total", "C.", "k")
	h := r.NewHistogramVec("h_seconds", "H.", nil, "k")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := []string{"a", "b"}[g%2]
			for range 1000 {
				c.With(k).Inc()
				h.With(k).Observe(0.003)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			_ = text(t, r)
		}
	}()
	wg.Wait()
	out := text(t, r)
	assert.Contains(t, out, `c_total{k="a"} 4000`)
	assert.Contains(t, out, `c_total{k="b"} 4000`)
	assert.Contains(t, out, `h_seconds_bucket{k="a",le="0.0025"} 0`)
	assert.Contains(t, out, `h_seconds_bucket{k="a",le="0.005"} 4000`)
	assert.Contains(t, out, `h_seconds_count{k="b"} 4000`)
}

func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("hits_total", "Hits.").Inc()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, ContentType, rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), "hits_total 1\n")
}
