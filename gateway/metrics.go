package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/qxbridge/qxbridge/internal/metrics"
	"github.com/qxbridge/qxbridge/scgi"
	"github.com/qxbridge/qxbridge/store"
)

// gatewayMetrics are the figures the gateway exports on -metrics.
type gatewayMetrics struct {
	reg *metrics.Registry

	requests      *metrics.CounterVec   // route, status
	latency       *metrics.HistogramVec // route
	backendErrors *metrics.CounterVec   // route, status
	rejected      *metrics.CounterVec   // route
	reloads       *metrics.CounterVec   // result

	storeOps     *metrics.CounterVec   // op, result
	storeLatency *metrics.HistogramVec // op
	storeWaits   *metrics.CounterVec   // op

	sweepDeleted   *metrics.Counter
	sweepErrors    *metrics.Counter
	sweepRemaining atomic.Int64
	sweepLast      atomic.Int64 // unix seconds of the last sweep, 0 before the first

	// proxies returns the pools of the current routing table.
	proxies func() []namedProxy
}

type namedProxy struct {
	route string
	proxy *scgi.Proxy
}

func newGatewayMetrics() *gatewayMetrics {
	reg := metrics.NewRegistry()
	m := &gatewayMetrics{reg: reg}
	m.requests = reg.NewCounterVec("qxbridge_requests_total",
		"Requests served, by route (the prefix as configured; none when no route matched) and HTTP status.", "route", "status")
	m.latency = reg.NewHistogramVec("qxbridge_request_duration_seconds",
		"Time from receiving a request to the end of its response, by route.", nil, "route")
	m.backendErrors = reg.NewCounterVec("qxbridge_backend_errors_total",
		"Proxied requests the gateway answered itself because the backend pool failed them, by route and the status answered (502 refused or broken, 503 no backend available, 504 timeout).", "route", "status")
	m.rejected = reg.NewCounterVec("qxbridge_rejected_session_cookies_total",
		"Session cookies with an invalid id removed from requests before they were forwarded to Python, by route.", "route")
	m.reloads = reg.NewCounterVec("qxbridge_config_reloads_total",
		"Configuration reloads (SIGHUP), by result: ok, or refused (the running configuration stayed).", "result")
	reg.NewGaugeFunc("qxbridge_backend_up", "Whether a backend takes requests (0 while it rests after failures).",
		[]string{"route", "backend"}, m.backendSamples(func(s scgi.BackendStats) float64 { return bool01(s.Healthy) }))
	reg.NewGaugeFunc("qxbridge_backend_in_flight", "Requests holding a connection to a backend now.",
		[]string{"route", "backend"}, m.backendSamples(func(s scgi.BackendStats) float64 { return float64(s.InFlight) }))
	reg.NewCounterFunc("qxbridge_backend_connections_total", "Connection attempts made to a backend.",
		[]string{"route", "backend"}, m.backendSamples(func(s scgi.BackendStats) float64 { return float64(s.Requests) }))
	reg.NewCounterFunc("qxbridge_backend_failures_total", "Connection attempts to a backend that failed (dial error, or no response at all).",
		[]string{"route", "backend"}, m.backendSamples(func(s scgi.BackendStats) float64 { return float64(s.Failures) }))
	m.storeOps = reg.NewCounterVec("qxbridge_session_operations_total",
		"Session store operations of the Go pages, by operation (load, save, delete, has) and result (ok, not_found, lock_timeout, error).", "op", "result")
	m.storeLatency = reg.NewHistogramVec("qxbridge_session_operation_duration_seconds",
		"Duration of session store operations, lock waits included, by operation.", nil, "op")
	m.storeWaits = reg.NewCounterVec("qxbridge_session_lock_waits_total",
		"Waits of session loads and saves for a session file's flock(2) lock, held by a Python worker or another request, by operation.", "op")
	m.sweepDeleted = reg.NewCounter("qxbridge_sweep_deleted_sessions_total", "Session files deleted by the idle sweep (-max-idle).")
	m.sweepErrors = reg.NewCounter("qxbridge_sweep_errors_total", "Idle sweeps that failed.")
	reg.NewGaugeFunc("qxbridge_sweep_remaining_sessions", "Sessions left after the last idle sweep.", nil, func() []metrics.Sample {
		if m.sweepLast.Load() == 0 {
			return nil
		}
		return []metrics.Sample{{Value: float64(m.sweepRemaining.Load())}}
	})
	reg.NewGaugeFunc("qxbridge_sweep_last_run_timestamp_seconds", "When the last idle sweep ran (Unix time).", nil, func() []metrics.Sample {
		if t := m.sweepLast.Load(); t != 0 {
			return []metrics.Sample{{Value: float64(t)}}
		}
		return nil
	})
	return m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *gatewayMetrics) backendSamples(f func(scgi.BackendStats) float64) func() []metrics.Sample {
	return func() []metrics.Sample {
		var ps []namedProxy
		if m.proxies != nil {
			ps = m.proxies()
		}
		var out []metrics.Sample
		for _, np := range ps {
			for _, s := range np.proxy.Stats() {
				out = append(out, metrics.Sample{Labels: []string{np.route, s.Addr}, Value: f(s)})
			}
		}
		return out
	}
}

func (m *gatewayMetrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.With(route, strconv.Itoa(status)).Inc()
	m.latency.With(route).Observe(d.Seconds())
}

func (m *gatewayMetrics) sweepDone(deleted, remaining int, err error, now time.Time) {
	if err != nil {
		m.sweepErrors.Inc()
	}
	m.sweepDeleted.Add(float64(deleted))
	m.sweepRemaining.Store(int64(remaining))
	m.sweepLast.Store(max(now.Unix(), 1))
}

// handler serves /metrics and /healthz.
func (m *gatewayMetrics) handler(health func() (bool, string)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, text := health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(text))
	})
	return mux
}

// meteredStore counts and times the session store operations of the Go pages.
type meteredStore struct {
	dir *store.Directory
	m   *gatewayMetrics
}

func (s meteredStore) observe(op string, start time.Time, err error) {
	d := time.Since(start)
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		result = "not_found"
	case errors.Is(err, store.ErrLockTimeout):
		result = "lock_timeout"
	default:
		result = "error"
	}
	s.m.storeOps.With(op, result).Inc()
	s.m.storeLatency.With(op).Observe(d.Seconds())
}

// lockWaited is the session store's lock-wait hook (store.WithLockWaitHook): it counts
// every wait of a load or save for a session file's lock.
func (m *gatewayMetrics) lockWaited(op string, _ time.Duration) {
	m.storeWaits.With(op).Inc()
}

func (s meteredStore) Load(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	b, err := s.dir.Load(ctx, id)
	s.observe("load", start, err)
	return b, err
}

func (s meteredStore) Save(ctx context.Context, id string, data []byte) error {
	start := time.Now()
	err := s.dir.Save(ctx, id, data)
	s.observe("save", start, err)
	return err
}

func (s meteredStore) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.dir.Delete(ctx, id)
	s.observe("delete", start, err)
	return err
}

func (s meteredStore) Has(ctx context.Context, id string) (bool, error) {
	start := time.Now()
	ok, err := s.dir.Has(ctx, id)
	s.observe("has", start, err)
	return ok, err
}
