package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/scgi"
	"github.com/qxbridge/qxbridge/store"
)

// latencyBuckets are the request and session-operation latency buckets in seconds,
// from half a millisecond to ten seconds: the span between a page served from memory
// and a backend timing out.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// gatewayMetrics are the figures the gateway exports on its metrics listener.
type gatewayMetrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec   // route, status
	latency       *prometheus.HistogramVec // route
	backendErrors *prometheus.CounterVec   // route, status
	rejected      *prometheus.CounterVec   // route
	reloads       *prometheus.CounterVec   // result

	storeOps     *prometheus.CounterVec   // op, result
	storeLatency *prometheus.HistogramVec // op
	storeWaits   *prometheus.CounterVec   // op
	sessionFails *prometheus.CounterVec   // op, status

	orderQueued   prometheus.Gauge         // requests waiting for their session's turn
	orderWait     *prometheus.HistogramVec // route
	orderRejected *prometheus.CounterVec   // route, reason

	sweepDeleted   prometheus.Counter
	sweepErrors    prometheus.Counter
	sweepRemaining atomic.Int64
	sweepLast      atomic.Int64 // unix seconds of the last sweep, 0 before the first

	// proxies returns the pools of the current routing table.
	proxies func() []namedProxy
}

type namedProxy struct {
	route string
	proxy *scgi.Proxy
}

// newRegistry returns a registry with the collectors every gateway exports besides
// its own figures: the Go runtime's (go_*), the process's (process_*), and
// qxbridge_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	b := readBuildInfo()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "qxbridge_build_info",
			Help: "The qxbridge version, the program's module, its VCS revision and the Go version it was built with; always 1.",
			ConstLabels: prometheus.Labels{"version": b.version, "program": b.program, "revision": b.revision,
				"goversion": b.goVersion},
		}, func() float64 { return 1 }),
	)
	return reg
}

// newGatewayMetrics registers the gateway's figures with reg.
func newGatewayMetrics(reg *prometheus.Registry) *gatewayMetrics {
	m := &gatewayMetrics{reg: reg}
	f := promauto.With(reg)
	m.requests = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_requests_total",
		Help: "Requests served, by route (the prefix as configured; none when no route matched) and HTTP status."}, []string{"route", "status"})
	m.latency = f.NewHistogramVec(prometheus.HistogramOpts{Name: "qxbridge_request_duration_seconds",
		Help: "Time from receiving a request to the end of its response, by route.", Buckets: latencyBuckets}, []string{"route"})
	m.backendErrors = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_backend_errors_total",
		Help: "Proxied requests the gateway answered itself because the backend pool failed them, by route and the status answered (502 refused or broken, 503 no backend available, 504 timeout)."}, []string{"route", "status"})
	m.rejected = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_rejected_session_cookies_total",
		Help: "Session cookies with an invalid id removed from requests before they were forwarded to Python (and Cookie headers defused because Quixote's parser would backtrack on them, one each), by route."}, []string{"route"})
	m.reloads = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_config_reloads_total",
		Help: "Configuration reloads (SIGHUP), by result: ok, or refused (the running configuration stayed)."}, []string{"result"})
	m.storeOps = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_session_operations_total",
		Help: "Session store operations of the Go pages, by operation (load, save, delete, has) and result (ok, not_found, lock_timeout, unavailable: the store could not answer, e.g. the database is down; error)."}, []string{"op", "result"})
	m.storeLatency = f.NewHistogramVec(prometheus.HistogramOpts{Name: "qxbridge_session_operation_duration_seconds",
		Help: "Duration of session store operations, lock waits included, by operation.", Buckets: latencyBuckets}, []string{"op"})
	m.storeWaits = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_session_lock_waits_total",
		Help: "Waits for a session's lock, by operation: a session file's flock(2) lock held by a Python worker or another request (load, save), or a session's advisory lock in PostgreSQL held by a request on another gateway (lock)."}, []string{"op"})
	m.sessionFails = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_session_failures_total",
		Help: "Go pages whose session could not be loaded, given an id, saved or deleted, by operation (load, id, save, delete) and the status answered instead of the page (503, 500; sent when the page had gone out before the save failed)."}, []string{"op", "status"})
	m.orderQueued = f.NewGauge(prometheus.GaugeOpts{Name: "qxbridge_session_queue_waiting",
		Help: "Requests waiting in this gateway for their session's turn (per-session ordering)."})
	m.orderWait = f.NewHistogramVec(prometheus.HistogramOpts{Name: "qxbridge_session_queue_wait_seconds",
		Help: "Time requests with a session waited for their session's turn, in this gateway and across gateways, by route.", Buckets: latencyBuckets}, []string{"route"})
	m.orderRejected = f.NewCounterVec(prometheus.CounterOpts{Name: "qxbridge_session_queue_rejections_total",
		Help: "Requests answered 503 because their session was busy, by route and reason (queue_full: too many waited; timeout: waited too long; lock_error: the cross-gateway lock failed)."}, []string{"route", "reason"})
	m.sweepDeleted = f.NewCounter(prometheus.CounterOpts{Name: "qxbridge_sweep_deleted_sessions_total",
		Help: "Session files deleted by the idle sweep (-max-idle)."})
	m.sweepErrors = f.NewCounter(prometheus.CounterOpts{Name: "qxbridge_sweep_errors_total", Help: "Idle sweeps that failed."})
	reg.MustRegister(&stateCollector{m})
	return m
}

// Figures read at scrape time from the component that keeps them: the pools'
// backend state, and the last idle sweep's (absent before the first sweep).
var (
	backendUpDesc = prometheus.NewDesc("qxbridge_backend_up",
		"Whether a backend takes requests (0 while it rests after failures).", []string{"route", "backend"}, nil)
	backendInFlightDesc = prometheus.NewDesc("qxbridge_backend_in_flight",
		"Requests holding a connection to a backend now.", []string{"route", "backend"}, nil)
	backendConnsDesc = prometheus.NewDesc("qxbridge_backend_connections_total",
		"Connection attempts made to a backend.", []string{"route", "backend"}, nil)
	backendFailuresDesc = prometheus.NewDesc("qxbridge_backend_failures_total",
		"Connection attempts to a backend that failed (dial error, or no response at all).", []string{"route", "backend"}, nil)
	backendAbandonedDesc = prometheus.NewDesc("qxbridge_backend_abandoned_total",
		"Requests a backend may still have been running when the gateway stopped waiting for it (its client had left or it was answered 504, and it outlasted the proxy's drain limits): their session writes are no longer ordered.", []string{"route", "backend"}, nil)
	backendWarmDesc = prometheus.NewDesc("qxbridge_backend_warm_connections",
		"Connections dialled ahead to a backend and waiting for a request now (-backend-warm-conns).", []string{"route", "backend"}, nil)
	backendWarmUsedDesc = prometheus.NewDesc("qxbridge_backend_warm_connections_used_total",
		"Requests sent on a connection dialled ahead.", []string{"route", "backend"}, nil)
	sweepRemainingDesc = prometheus.NewDesc("qxbridge_sweep_remaining_sessions",
		"Sessions left after the last idle sweep.", nil, nil)
	sweepLastDesc = prometheus.NewDesc("qxbridge_sweep_last_run_timestamp_seconds",
		"When the last idle sweep ran (Unix time).", nil, nil)
)

type stateCollector struct{ m *gatewayMetrics }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{backendUpDesc, backendInFlightDesc, backendConnsDesc, backendFailuresDesc, backendAbandonedDesc, backendWarmDesc, backendWarmUsedDesc, sweepRemainingDesc, sweepLastDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	var ps []namedProxy
	if m.proxies != nil {
		ps = m.proxies()
	}
	for _, np := range ps {
		for _, s := range np.proxy.Stats() {
			ch <- prometheus.MustNewConstMetric(backendUpDesc, prometheus.GaugeValue, bool01(s.Healthy), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendInFlightDesc, prometheus.GaugeValue, float64(s.InFlight), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendConnsDesc, prometheus.CounterValue, float64(s.Requests), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendFailuresDesc, prometheus.CounterValue, float64(s.Failures), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendAbandonedDesc, prometheus.CounterValue, float64(s.Abandoned), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendWarmDesc, prometheus.GaugeValue, float64(s.Warm), np.route, s.Addr)
			ch <- prometheus.MustNewConstMetric(backendWarmUsedDesc, prometheus.CounterValue, float64(s.WarmUsed), np.route, s.Addr)
		}
	}
	if t := m.sweepLast.Load(); t != 0 {
		ch <- prometheus.MustNewConstMetric(sweepRemainingDesc, prometheus.GaugeValue, float64(m.sweepRemaining.Load()))
		ch <- prometheus.MustNewConstMetric(sweepLastDesc, prometheus.GaugeValue, float64(t))
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *gatewayMetrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
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
	st quixote.Store
	m  *gatewayMetrics
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
	case errors.Is(err, store.ErrUnavailable):
		result = "unavailable"
	default:
		result = "error"
	}
	s.m.storeOps.WithLabelValues(op, result).Inc()
	s.m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
}

// lockWaited is the session store's lock-wait hook (store.WithLockWaitHook): it counts
// every wait of a load or save for a session file's lock.
func (m *gatewayMetrics) lockWaited(op string, _ time.Duration) {
	m.storeWaits.WithLabelValues(op).Inc()
}

func (s meteredStore) Load(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	b, err := s.st.Load(ctx, id)
	s.observe("load", start, err)
	return b, err
}

func (s meteredStore) Save(ctx context.Context, id string, data []byte) error {
	start := time.Now()
	err := s.st.Save(ctx, id, data)
	s.observe("save", start, err)
	return err
}

func (s meteredStore) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.st.Delete(ctx, id)
	s.observe("delete", start, err)
	return err
}

// sessionFailed is the session manager's Failed hook.
func (m *gatewayMetrics) sessionFailed(_ *http.Request, op string, status int, _ error) {
	answered := "sent"
	if status != 0 {
		answered = strconv.Itoa(status)
	}
	m.sessionFails.WithLabelValues(op, answered).Inc()
}

// RemoveEmpty passes on the store's removal of the empty files crashed or
// out-of-space Python writers leave (quixote.Manager calls it at load).
func (s meteredStore) RemoveEmpty(ctx context.Context, id string) (bool, error) {
	er, ok := s.st.(interface {
		RemoveEmpty(ctx context.Context, id string) (bool, error)
	})
	if !ok {
		return false, nil
	}
	start := time.Now()
	removed, err := er.RemoveEmpty(ctx, id)
	s.observe("remove_empty", start, err)
	return removed, err
}

// ModTime passes on the store's modification time of a session, which spares the
// idle check of a Python page reading the session (quixote.Manager.Expire).
func (s meteredStore) ModTime(ctx context.Context, id string) (time.Time, error) {
	start := time.Now()
	t, ok, err := modTime(ctx, s.st, id)
	if !ok {
		return t, errNoModTime
	}
	s.observe("stat", start, err)
	return t, err
}

func (s meteredStore) Has(ctx context.Context, id string) (bool, error) {
	start := time.Now()
	ok, err := s.st.Has(ctx, id)
	s.observe("has", start, err)
	return ok, err
}
