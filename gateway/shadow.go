package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/qxbridge/qxbridge/scgi"
	"github.com/qxbridge/qxbridge/store"
)

// snapshotKey carries the session snapshot a shadow run reads.
type snapshotKey struct{}

type snapshot struct {
	id   string
	data []byte // nil: there was no session file
}

// snapshotStore is the store of the read-only manager of shadow runs: it returns
// the session as it was loaded before Python served the request, and writes nothing
// (the manager never asks it to).
type snapshotStore struct{}

func (snapshotStore) Load(ctx context.Context, id string) ([]byte, error) {
	if s, ok := ctx.Value(snapshotKey{}).(snapshot); ok && s.id == id && s.data != nil {
		return s.data, nil
	}
	return nil, store.ErrNotFound
}

var errReadOnly = errors.New("gateway: a shadow run's session is read-only")

func (snapshotStore) Save(context.Context, string, []byte) error { return errReadOnly }
func (snapshotStore) Delete(context.Context, string) error       { return errReadOnly }
func (snapshotStore) Has(context.Context, string) (bool, error)  { return false, nil }

// Outcomes of a shadow run.
const (
	outcomeSame     = "same"
	outcomeDiffers  = "differs"
	outcomeGoFailed = "go_failed"
	outcomeDropped  = "dropped"
	outcomeSkipped  = "skipped"
)

// serveShadowed serves a safe request with Python, and then runs it again on the
// candidate in the background, against the session as it was before Python served it
// (read here, inside whatever orders the session's requests, before the request
// reaches the worker), and compares the two answers. The user's response does not
// wait for the shadow run.
func (c *cutover) serveShadowed(w http.ResponseWriter, r *http.Request) {
	select {
	case c.slots <- struct{}{}:
	default:
		c.count(outcomeDropped)
		c.python.ServeHTTP(w, r)
		return
	}
	started := false // the shadow run took the slot over (or it was given back)
	defer func() {
		if !started {
			<-c.slots
		}
	}()
	body, whole, err := readBody(r, c.cfg.MaxBody)
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	if !whole {
		c.count(outcomeSkipped)
		// Not shadowed: the slot is free while Python serves (and reads) it.
		started = true
		<-c.slots
		r.Body = body
		c.python.ServeHTTP(w, r)
		return
	}
	// The session is read while the pool connects to a worker, and before the
	// request is sent to it: the worker cannot have changed it yet.
	snap := snapshot{id: c.cookie.SessionID(r)}
	loaded := make(chan struct{})
	var loadErr error
	if snap.id == "" {
		close(loaded)
	} else {
		go func() {
			defer close(loaded)
			snap.data, loadErr = c.load(r.Context(), snap.id)
		}()
	}
	sr := r.Clone(context.WithoutCancel(r.Context()))
	sr.Body = body.replay()
	pr := r.WithContext(scgi.WithBeforeSend(r.Context(), func() { <-loaded }))
	pr.Body = body.replay()
	tee := &teeWriter{ResponseWriter: w, capture: capture{max: c.cfg.MaxBody, header: http.Header{}}}
	c.python.ServeHTTP(tee, pr) // a broken-off answer panics through: nothing to compare
	<-loaded                    // when no worker was reached, the proxy did not wait
	if loadErr != nil && !errors.Is(loadErr, store.ErrNotFound) {
		c.log.Warn("shadow: cannot read the session; not shadowed", "id", snap.id, "error", loadErr)
		c.count(outcomeSkipped)
		return
	}
	sr = sr.WithContext(context.WithValue(sr.Context(), snapshotKey{}, snap))
	if tee.capture.status == 0 {
		tee.capture.status = http.StatusOK
	}
	tee.capture.header = w.Header().Clone()
	started = true
	go func() {
		defer func() { <-c.slots }()
		c.runShadow(sr, &tee.capture)
	}()
}

func (c *cutover) count(outcome string) { c.record(outcome, nil) }

// record counts an outcome and keeps its sample, if any, in the report at once: a
// reader of the report never sees the count without its sample.
func (c *cutover) record(outcome string, sample *shadowSample) {
	c.m.comparisons.WithLabelValues(c.spec.Prefix, outcome).Inc()
	c.report.record(outcome, sample)
}

// runShadow runs the candidate on sr and compares its answer with Python's.
func (c *cutover) runShadow(sr *http.Request, py *capture) {
	ctx, cancel := context.WithTimeout(sr.Context(), c.timeout)
	defer cancel()
	goAns := &capture{max: c.cfg.MaxBody, header: http.Header{}}
	panicked := func() (p any) {
		defer func() { p = recover() }()
		c.shadowed.ServeHTTP(goAns, sr.WithContext(ctx))
		return nil
	}()
	if goAns.status == 0 {
		goAns.status = http.StatusOK
	}
	outcome := ""
	switch {
	case panicked != nil:
		c.m.panics.WithLabelValues(c.spec.Prefix).Inc()
		c.log.Warn("shadow: Go candidate panicked", "method", sr.Method, "path", sr.URL.Path, "panic", fmt.Sprint(panicked))
		goAns.status = http.StatusInternalServerError
		goAns.body.Reset()
		goAns.body.WriteString(fmt.Sprintf("panic: %v\n", panicked))
		outcome = outcomeGoFailed
	case goAns.status >= 500 && py.status < 500:
		outcome = outcomeGoFailed
	case py.over || goAns.over:
		c.count(outcomeSkipped)
		return
	}
	pyText, goText := c.render(sr, py), c.render(sr, goAns)
	if outcome == "" {
		outcome = outcomeSame
		if c.normalise(pyText) != c.normalise(goText) {
			outcome = outcomeDiffers
		}
	}
	if outcome == outcomeSame {
		c.count(outcome)
		return
	}
	d := unifiedDiff("python", "go", c.rewrite(pyText), c.rewrite(goText))
	msg := "shadow: Go candidate differs from Python"
	if outcome == outcomeGoFailed {
		msg = "shadow: Go candidate failed where Python did not"
	}
	c.log.Warn(msg, "outcome", outcome, "method", sr.Method,
		"path", sr.URL.Path, "python_status", py.status, "go_status", goAns.status, "diff", clip(d, 2048))
	c.record(outcome, &shadowSample{
		Time: time.Now().UTC(), Outcome: outcome, Method: sr.Method, URI: sr.URL.RequestURI(),
		Python: sampleSide{Status: py.status, Text: clip(pyText, 8192)},
		Go:     sampleSide{Status: goAns.status, Text: clip(goText, 8192)},
		Diff:   clip(d, 16384),
	})
}

// render is an answer as compared: the status line, the compared headers, a blank
// line and the body (none for HEAD).
func (c *cutover) render(r *http.Request, a *capture) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s\n", a.status, http.StatusText(a.status))
	for _, h := range c.cfg.CompareHeaders {
		for _, v := range a.header.Values(h) {
			fmt.Fprintf(&b, "%s: %s\n", http.CanonicalHeaderKey(h), v)
		}
	}
	b.WriteByte('\n')
	if r.Method != http.MethodHead {
		b.Write(a.body.Bytes())
	}
	return b.String()
}

// rewrite applies the replacement rules.
func (c *cutover) rewrite(s string) string {
	for i, re := range c.replace {
		s = re.ReplaceAllString(s, c.cfg.Replace[i].With)
	}
	return s
}

// normalise is what a comparison compares: the rewritten text, without any white
// space when IgnoreSpace is set.
func (c *cutover) normalise(s string) string {
	s = c.rewrite(s)
	if c.cfg.IgnoreSpace {
		s = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n[... %d more bytes]\n", len(s)-n)
}

// unifiedDiff returns a unified diff of two texts by lines, as one hunk from the
// first line that differs to the last, with up to three lines of context: linear in
// the texts' length, whatever they hold.
func unifiedDiff(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	la, lb := splitLines(a), splitLines(b)
	pre := 0
	for pre < len(la) && pre < len(lb) && la[pre] == lb[pre] {
		pre++
	}
	suf := 0
	for suf < len(la)-pre && suf < len(lb)-pre && la[len(la)-1-suf] == lb[len(lb)-1-suf] {
		suf++
	}
	start := max(pre-3, 0)
	endA, endB := min(len(la)-suf+3, len(la)), min(len(lb)-suf+3, len(lb))
	var s strings.Builder
	fmt.Fprintf(&s, "--- %s\n+++ %s\n@@ -%s +%s @@\n", nameA, nameB, hunkRange(start, endA-start), hunkRange(start, endB-start))
	line := func(mark byte, l string) {
		s.WriteByte(mark)
		s.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			s.WriteString("\n\\ No newline at end of file\n")
		}
	}
	for _, l := range la[start:pre] {
		line(' ', l)
	}
	for _, l := range la[pre : len(la)-suf] {
		line('-', l)
	}
	for _, l := range lb[pre : len(lb)-suf] {
		line('+', l)
	}
	for _, l := range la[len(la)-suf : endA] {
		line(' ', l)
	}
	return s.String()
}

// hunkRange is a hunk's start,count in diff's numbering (lines from 1; an empty
// range names the line before it).
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// capture is a response kept in memory: its status, headers and up to max bytes of
// body (over notes that there was more).
type capture struct {
	max    int
	header http.Header
	status int
	body   bytes.Buffer
	over   bool
}

func (a *capture) keep(b []byte) {
	if a.over {
		return
	}
	if a.body.Len()+len(b) > a.max {
		a.over = true
		return
	}
	a.body.Write(b)
}

// capture is also the ResponseWriter of shadow runs.
func (a *capture) Header() http.Header { return a.header }

func (a *capture) WriteHeader(code int) {
	if a.status == 0 && code >= 200 {
		a.status = code
	}
}

func (a *capture) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	a.keep(b)
	return len(b), nil
}

// teeWriter passes Python's answer to the client and keeps a copy.
type teeWriter struct {
	http.ResponseWriter
	capture capture
}

func (w *teeWriter) WriteHeader(code int) {
	w.capture.WriteHeader(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.capture.Write(b[:n])
	return n, err
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// shadowReport is a route's shadow figures and its latest differences.
type shadowReport struct {
	mu    sync.Mutex
	view  shadowView
	limit int
}

// shadowView is a report as served.
type shadowView struct {
	Route   string            `json:"route"`
	Counts  map[string]uint64 `json:"counts"`
	Samples []shadowSample    `json:"samples"` // oldest first
}

type shadowSample struct {
	Time    time.Time  `json:"time"`
	Outcome string     `json:"outcome"`
	Method  string     `json:"method"`
	URI     string     `json:"uri"`
	Python  sampleSide `json:"python"`
	Go      sampleSide `json:"go"`
	Diff    string     `json:"diff"`
}

type sampleSide struct {
	Status int    `json:"status"`
	Text   string `json:"text"` // the status line, compared headers and body
}

func (r *shadowReport) setLimit(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limit = n
	if len(r.view.Samples) > n {
		r.view.Samples = slices.Clone(r.view.Samples[len(r.view.Samples)-n:])
	}
}

func (r *shadowReport) record(outcome string, s *shadowSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.view.Counts[outcome]++
	if s == nil {
		return
	}
	if len(r.view.Samples) >= r.limit {
		r.view.Samples = slices.Delete(r.view.Samples, 0, len(r.view.Samples)-r.limit+1)
	}
	r.view.Samples = append(r.view.Samples, *s)
}

// copy returns the report as it is now.
func (r *shadowReport) copy() shadowView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := shadowView{Route: r.view.Route, Counts: map[string]uint64{}, Samples: slices.Clone(r.view.Samples)}
	for _, o := range []string{outcomeSame, outcomeDiffers, outcomeGoFailed, outcomeDropped, outcomeSkipped} {
		out.Counts[o] = r.view.Counts[o]
	}
	return out
}

// serveShadowReport answers /shadow on the metrics listener: the shadow report of
// the route named by ?route= (every route without it), as text, or as JSON with
// ?format=json.
func (g *Gateway) serveShadowReport(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("route")
	var reps []shadowView
	g.cutover.mu.Lock()
	names := make([]string, 0, len(g.cutover.reports))
	for n := range g.cutover.reports {
		names = append(names, n)
	}
	g.cutover.mu.Unlock()
	slices.Sort(names)
	for _, n := range names {
		if want == "" || n == want {
			g.cutover.mu.Lock()
			rep := g.cutover.reports[n]
			g.cutover.mu.Unlock()
			reps = append(reps, rep.copy())
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(reps) == 0 {
		// Nothing to report is an answer the operator must see, not an empty page.
		msg := "no route has a Go candidate (-candidate PREFIX=NAME, or candidate in a [[route]])"
		if want != "" && len(names) > 0 {
			msg = fmt.Sprintf("no route %s has a Go candidate (routes with one: %s)", want, strings.Join(names, ", "))
		} else if want != "" {
			msg = fmt.Sprintf("no route %s has a Go candidate: no route has one", want)
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.MarshalIndent(reps, "", "  ")
		_, _ = w.Write(append(b, '\n'))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	for _, rep := range reps {
		writeReport(&b, &rep)
	}
	_, _ = w.Write([]byte(b.String()))
}

func writeReport(b *strings.Builder, rep *shadowView) {
	c := rep.Counts
	fmt.Fprintf(b, "route %s: same %d, differs %d, go_failed %d, dropped %d, skipped %d\n", rep.Route,
		c[outcomeSame], c[outcomeDiffers], c[outcomeGoFailed], c[outcomeDropped], c[outcomeSkipped])
	for i, s := range rep.Samples {
		fmt.Fprintf(b, "\n=== %d/%d %s %s %s %s (python %d, go %d)\n%s", i+1, len(rep.Samples),
			s.Time.Format(time.RFC3339), s.Outcome, s.Method, s.URI, s.Python.Status, s.Go.Status, s.Diff)
	}
	if len(rep.Samples) > 0 {
		b.WriteByte('\n')
	}
}

const shadowUsage = `usage: %s shadow [-metrics ADDR | -config FILE] report [-json] [ROUTE]

Prints the shadow report of a running gateway: for each route with a shadowed Go
candidate (or the ROUTE given by its prefix), how many shadow runs gave the same
answer as Python, a different one, a failure, or were dropped or skipped, and the
latest differences with a diff. The gateway serves it at /shadow on its metrics
listener (-metrics); the report lives in the gateway's memory and starts empty at
each start.

Flags:
`

// runShadow runs the shadow command.
func (g *Gateway) runShadow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	prog := g.name()
	metrics, config, asJSON := g.Config.MetricsAddr, "", false
	define := func(fs *flag.FlagSet) {
		fs.SetOutput(stderr)
		fs.StringVar(&metrics, "metrics", metrics, "the running gateway's metrics `ADDR` (host:port or unix:/path)")
		fs.StringVar(&config, "config", config, "take the metrics address from the configuration `FILE`")
	}
	fs := flag.NewFlagSet(prog+" shadow", flag.ContinueOnError)
	define(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), shadowUsage, prog)
		fs.PrintDefaults()
	}
	if code, ok := parseCommand(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 || fs.Arg(0) != "report" {
		fs.Usage()
		return 2
	}
	rs := flag.NewFlagSet(prog+" shadow report", flag.ContinueOnError)
	define(rs)
	rs.BoolVar(&asJSON, "json", false, "print JSON")
	rs.Usage = func() {
		fmt.Fprintf(rs.Output(), "usage: %s shadow [-metrics ADDR | -config FILE] report [-json] [ROUTE]\n\nFlags:\n", prog)
		rs.PrintDefaults()
	}
	if code, ok := parseCommand(rs, fs.Args()[1:], stderr); !ok {
		return code
	}
	if rs.NArg() > 1 {
		fmt.Fprintf(stderr, "usage: %s shadow report [-json] [ROUTE]\n", prog)
		return 2
	}
	if config != "" {
		cfg := g.Config.clone()
		if _, err := loadFile(config, &cfg); err != nil {
			fmt.Fprintln(stderr, prog+" shadow:", err)
			return 2
		}
		if metrics == g.Config.MetricsAddr {
			metrics = cfg.MetricsAddr
		}
	}
	if metrics == "" {
		fmt.Fprintf(stderr, "%s shadow: the running gateway's metrics address is needed: -metrics ADDR, or -config FILE with [listen] metrics\n", prog)
		return 2
	}
	q := url.Values{}
	if rs.NArg() == 1 {
		q.Set("route", rs.Arg(0))
	}
	if asJSON {
		q.Set("format", "json")
	}
	body, err := fetchMetrics(ctx, metrics, "/shadow?"+q.Encode())
	if err != nil {
		fmt.Fprintf(stderr, "%s shadow: %v\n", prog, err)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}

// fetchMetrics gets a page from a gateway's metrics listener.
func fetchMetrics(ctx context.Context, addr, page string) ([]byte, error) {
	tr := &http.Transport{}
	host := addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		host = "gateway"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+page, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("the gateway's metrics listener %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
