// Package metrics keeps counters, gauges and histograms in memory and writes them in
// the Prometheus text exposition format (version 0.0.4), which Prometheus,
// VictoriaMetrics and the OpenTelemetry collector scrape.
//
// It exists so that the gateway can export its figures without
// github.com/prometheus/client_golang, whose dependency tree (prometheus/common,
// procfs, protobuf and their own dependencies) outweighs the gateway itself. It keeps
// only what the gateway needs: counters and histograms whose label values are given
// when they are updated, and gauges and counters read from a callback at scrape time,
// for figures another component already keeps (such as a proxy's backend state).
//
// Metric names, label names and help texts are fixed by the program, so they are
// checked when a metric is registered (a bad one panics there, at start-up); label
// values come from requests and are escaped on output. Each metric's series are
// written sorted by label values, so two scrapes of the same state are identical.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// DefBuckets are latency buckets in seconds, from half a millisecond to ten seconds:
// the span between a page served from memory and a backend timing out.
var DefBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds metrics and writes them out. Use NewRegistry to make one.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
	names   map[string]bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]bool{}} }

type metric interface {
	describe() *desc
	write(w *bufio.Writer)
}

type desc struct {
	name, help, kind string
	labels           []string
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func (r *Registry) register(m metric) {
	d := m.describe()
	if !metricName.MatchString(d.name) {
		panic("metrics: invalid metric name " + strconv.Quote(d.name))
	}
	for i, l := range d.labels {
		if !labelName.MatchString(l) || strings.HasPrefix(l, "__") || l == "le" || slices.Contains(d.labels[:i], l) {
			panic("metrics: invalid label name " + strconv.Quote(l) + " for " + d.name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[d.name] {
		panic("metrics: " + d.name + " registered twice")
	}
	r.names[d.name] = true
	r.metrics = append(r.metrics, m)
}

// WriteText writes every metric in the text exposition format, in registration order.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	ms := slices.Clone(r.metrics)
	r.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, m := range ms {
		d := m.describe()
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", d.name, escapeHelp(d.help), d.name, d.kind)
		m.write(bw)
	}
	return bw.Flush()
}

// ServeHTTP answers a scrape.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	_ = r.WriteText(w)
}

// family keeps the labelled children of one metric, created on first use.
type family[T any] struct {
	d        desc
	mu       sync.RWMutex
	children map[string]*child[T]
	make     func() *T
}

type child[T any] struct {
	values []string
	v      *T
}

func newFamily[T any](kind, name, help string, labels []string, mk func() *T) *family[T] {
	return &family[T]{d: desc{name: name, help: help, kind: kind, labels: slices.Clone(labels)},
		children: map[string]*child[T]{}, make: mk}
}

func (f *family[T]) describe() *desc { return &f.d }

func (f *family[T]) with(values []string) *T {
	if len(values) != len(f.d.labels) {
		panic(fmt.Sprintf("metrics: %s has %d labels, got %d values", f.d.name, len(f.d.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.RLock()
	c := f.children[key]
	f.mu.RUnlock()
	if c != nil {
		return c.v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c = f.children[key]; c == nil {
		c = &child[T]{values: slices.Clone(values), v: f.make()}
		f.children[key] = c
	}
	return c.v
}

func (f *family[T]) sorted() []*child[T] {
	f.mu.RLock()
	cs := make([]*child[T], 0, len(f.children))
	for _, c := range f.children {
		cs = append(cs, c)
	}
	f.mu.RUnlock()
	slices.SortFunc(cs, func(a, b *child[T]) int { return slices.Compare(a.values, b.values) })
	return cs
}

// Counter is a value that only goes up.
type Counter struct{ bits atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Add adds v, which must not be negative (a negative v is ignored: counters only go
// up, and a scraper takes a decrease for a restart).
func (c *Counter) Add(v float64) {
	if !(v > 0) {
		return
	}
	addFloat(&c.bits, v)
}

// Value returns the current value.
func (c *Counter) Value() float64 { return math.Float64frombits(c.bits.Load()) }

func addFloat(bits *atomic.Uint64, v float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// CounterVec is a counter with labels.
type CounterVec struct{ f *family[Counter] }

// NewCounterVec registers a counter called name with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	v := &CounterVec{newFamily("counter", name, help, labels, func() *Counter { return new(Counter) })}
	r.register(v)
	return v
}

// NewCounter registers a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	return r.NewCounterVec(name, help).With()
}

// With returns the counter for the given label values, in the order of the label names.
func (v *CounterVec) With(values ...string) *Counter { return v.f.with(values) }

func (v *CounterVec) describe() *desc { return v.f.describe() }

func (v *CounterVec) write(w *bufio.Writer) {
	for _, c := range v.f.sorted() {
		writeSample(w, v.f.d.name, "", v.f.d.labels, c.values, "", c.v.Value())
	}
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	upper  []float64       // bucket upper bounds, ascending
	counts []atomic.Uint64 // per bucket (not cumulative), plus one for +Inf
	sum    atomic.Uint64   // float64 bits
	count  atomic.Uint64
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v) // the first bound >= v: le is inclusive
	h.counts[i].Add(1)
	addFloat(&h.sum, v)
	h.count.Add(1)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// HistogramVec is a histogram with labels.
type HistogramVec struct {
	f       *family[Histogram]
	buckets []float64
}

// NewHistogramVec registers a histogram called name with the given bucket upper
// bounds (ascending; DefBuckets if nil) and label names.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if buckets == nil {
		buckets = DefBuckets
	}
	if !slices.IsSorted(buckets) || len(buckets) == 0 || math.IsInf(buckets[len(buckets)-1], 1) {
		panic("metrics: buckets of " + name + " must be ascending and finite")
	}
	b := slices.Clone(buckets)
	v := &HistogramVec{buckets: b}
	v.f = newFamily("histogram", name, help, labels, func() *Histogram {
		return &Histogram{upper: b, counts: make([]atomic.Uint64, len(b)+1)}
	})
	r.register(v)
	return v
}

// With returns the histogram for the given label values.
func (v *HistogramVec) With(values ...string) *Histogram { return v.f.with(values) }

func (v *HistogramVec) describe() *desc { return v.f.describe() }

func (v *HistogramVec) write(w *bufio.Writer) {
	name, labels := v.f.d.name, v.f.d.labels
	for _, c := range v.f.sorted() {
		h := c.v
		// Read the count first: observations landing meanwhile may make the buckets
		// exceed it slightly, never fall short of it.
		count := h.count.Load()
		var cum uint64
		for i, ub := range h.upper {
			cum += h.counts[i].Load()
			writeSample(w, name, "_bucket", labels, c.values, formatFloat(ub), float64(cum))
		}
		cum += h.counts[len(h.upper)].Load()
		writeSample(w, name, "_bucket", labels, c.values, "+Inf", float64(max(cum, count)))
		writeSample(w, name, "_sum", labels, c.values, "", math.Float64frombits(h.sum.Load()))
		writeSample(w, name, "_count", labels, c.values, "", float64(max(cum, count)))
	}
}

// Sample is one series of a callback metric: its label values and its value.
type Sample struct {
	Labels []string
	Value  float64
}

type funcMetric struct {
	d       desc
	collect func() []Sample
}

func (m *funcMetric) describe() *desc { return &m.d }

func (m *funcMetric) write(w *bufio.Writer) {
	samples := m.collect()
	slices.SortFunc(samples, func(a, b Sample) int { return slices.Compare(a.Labels, b.Labels) })
	for _, s := range samples {
		if len(s.Labels) != len(m.d.labels) {
			continue // a programming error; leave the series out rather than write a bad one
		}
		writeSample(w, m.d.name, "", m.d.labels, s.Labels, "", s.Value)
	}
}

// NewGaugeFunc registers a gauge whose series collect returns at each scrape.
func (r *Registry) NewGaugeFunc(name, help string, labels []string, collect func() []Sample) {
	r.register(&funcMetric{d: desc{name: name, help: help, kind: "gauge", labels: slices.Clone(labels)}, collect: collect})
}

// NewCounterFunc registers a counter whose series collect returns at each scrape; the
// values must only go up, as another component's running totals do.
func (r *Registry) NewCounterFunc(name, help string, labels []string, collect func() []Sample) {
	r.register(&funcMetric{d: desc{name: name, help: help, kind: "counter", labels: slices.Clone(labels)}, collect: collect})
}

func writeSample(w *bufio.Writer, name, suffix string, labels, values []string, le string, v float64) {
	w.WriteString(name)
	w.WriteString(suffix)
	if len(labels) > 0 || le != "" {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l)
			w.WriteString(`="`)
			w.WriteString(escapeLabel(values[i]))
			w.WriteByte('"')
		}
		if le != "" {
			if len(labels) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`le="`)
			w.WriteString(le)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// escapeLabel escapes a label value as the format requires. Label values must be
// UTF-8: invalid bytes become U+FFFD, so that a hostile request path cannot make the
// output unparsable.
func escapeLabel(s string) string { return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }

func escapeHelp(s string) string { return helpEscaper.Replace(s) }
