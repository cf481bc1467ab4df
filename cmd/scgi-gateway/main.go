// Command scgi-gateway is the gateway a Quixote site deploys to move to Go one URL at a
// time. Behind nginx (scgi_pass), Apache (mod_proxy_scgi) or lighttpd it receives SCGI
// requests, serves the routes already written in Go with Quixote sessions loaded from
// the session directory the Python side uses, and forwards every other route over
// SCGI to the Python workers. Both sides read and write the same session3 session
// files, under the same flock(2) locks, so nobody is logged out by the move.
//
// Usage:
//
//	scgi-gateway [flags]                     serve (see -help)
//	scgi-gateway sessions [-dir DIR] COMMAND inspect and edit the session directory
//
// With no flags it serves HTTP on 127.0.0.1:8080 with the built-in demo application
// (a Go port of session3's own test application) at /, and sessions in ./sessions.
//
// # Routes
//
// -route PREFIX=TARGET sends the requests whose path is PREFIX or lies below it to
// TARGET; the longest matching prefix wins, and a path matching no route is answered
// 404. TARGET is "demo", "scgi://HOST:PORT[,HOST:PORT...]" (a pool of Python workers,
// balanced by least connections, resting a failing one) or "scgi+unix:///PATH". A
// route does not rewrite the path: a Python worker gets SCRIPT_NAME "" and PATH_INFO
// the whole path (or the SCRIPT_NAME its front server sent, when the path lies under
// it). -mount PREFIX=TARGET is the same but mounts the application at PREFIX: it gets
// SCRIPT_NAME=PREFIX and PATH_INFO=the rest, which is how a Quixote application
// configured for a sub-path expects it. Quixote derives its cookie path from
// SCRIPT_NAME; to share the login state between a mounted application and other
// routes, give both sides a cookie path of "/" (-cookie-path / and Quixote's
// SESSION_COOKIE_PATH).
//
// Before a request is forwarded to Python, a session cookie whose value is not a
// valid session id is removed from it (and logged and counted): session3 uses the
// cookie value as a file name unchecked, so such a value reaches outside the session
// directory. See shield.go.
//
// # Operations
//
// SIGTERM or SIGINT stops accepting connections, lets requests in flight finish for up
// to -shutdown-timeout, and exits 0. Each request is logged as one log/slog line
// (route, status, duration, backend). -metrics ADDR serves Prometheus metrics at
// /metrics and a health check at /healthz. -max-idle DURATION deletes sessions idle for
// longer, periodically. Under systemd socket activation (LISTEN_FDS, as python-scgi
// supports it) the passed sockets serve SCGI, or HTTP and metrics when
// LISTEN_FDNAMES names them "http" and "metrics".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usageText = `usage: scgi-gateway [flags]
       scgi-gateway sessions [-dir DIR] list [-json] | show ID | set ID NAME=JSON | delete ID | sweep -older DURATION

Serves the Go routes of a Quixote site and forwards the others to its Python workers
over SCGI, sharing session3's session files. With no flags: the demo application on
http://127.0.0.1:8080/, sessions in ./sessions.

Examples:
  scgi-gateway -scgi unix:/run/qxbridge/gateway.sock -sessions /var/lib/myapp/sessions \
      -route /counter=demo -route /=scgi://127.0.0.1:4000,127.0.0.1:4001
  scgi-gateway -http :8080 -mount /app/=scgi+unix:///run/myapp/scgi.sock -cookie-path /

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is the whole program but for the process: it runs the command in args and
// returns the exit status. The serve command serves until ctx is done. ready, if not
// nil, is called with the gateway once its listeners are open (tests use it to learn
// the addresses).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(*gateway)) int {
	if len(args) > 0 && args[0] == "sessions" {
		return runSessions(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseServeFlags(args, stderr, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "scgi-gateway:", err)
		return 2
	}
	log := newLogger(cfg, stderr)

	inh, err := systemdListeners()
	if err != nil {
		log.Error("socket activation", "error", err)
		return 1
	}
	g, err := newGateway(cfg, log)
	if err != nil {
		for _, in := range inh {
			in.l.Close()
		}
		log.Error("cannot start", "error", err)
		return 1
	}
	if err := g.listen(inh); err != nil {
		log.Error("cannot listen", "error", err)
		return 1
	}
	g.logStartup()
	if ready != nil {
		ready(g)
	}
	if err := g.serve(ctx); err != nil {
		return 1
	}
	return 0
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logStartup says what the gateway serves, where.
func (g *gateway) logStartup() {
	g.log.Info("sessions", "dir", g.dir.Dir(), "cookie", g.cfg.Cookie.Name, "new_session_class", g.cfg.NewClass.String())
	for _, r := range g.routes {
		g.log.Info("route", "prefix", r.spec.Prefix, "target", r.spec.Target, "mount", r.spec.Mount)
	}
	for _, b := range g.listeners {
		g.log.Info("listening", "kind", b.kind, "addr", listenerAddr(b.l))
	}
	if g.cfg.DefaultRoute || g.cfg.DefaultListener {
		msg := "no flags given:"
		if !(g.cfg.DefaultRoute && g.cfg.DefaultListener) {
			msg = "defaults:"
		}
		attrs := []any{}
		if g.cfg.DefaultRoute {
			msg += " the demo app serves /"
		}
		if g.cfg.DefaultListener {
			if g.cfg.DefaultRoute {
				msg += " at http://" + g.Addr("http") + "/"
			} else {
				msg += " serving HTTP on " + g.Addr("http")
			}
		}
		attrs = append(attrs, "sessions", g.dir.Dir())
		g.log.Info(msg, attrs...)
	}
}
