package gateway_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/qxbridge/qxbridge/gateway"
	"github.com/qxbridge/qxbridge/scgi"
)

// A program tunes its Python pools beyond what the configuration names: here a
// shorter wait for a worker still running a request whose client has gone, and a
// shorter dial timeout.
func ExampleGateway_ModifyProxy() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := gateway.New()
	g.Logger = slog.New(slog.DiscardHandler)
	g.Config.SessionsDir = dir
	g.Config.Routes = []gateway.Route{{Prefix: "/", Target: "scgi://127.0.0.1:4000"}}
	g.ModifyProxy = func(route gateway.Route, p *scgi.Proxy) error {
		p.DrainTimeout = 10 * time.Second
		p.DialTimeout = 2 * time.Second
		fmt.Printf("pool for %s: drain %v, dial %v\n", route.Prefix, p.DrainTimeout, p.DialTimeout)
		return nil
	}
	if err := g.Open(); err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	// Output:
	// pool for /: drain 10s, dial 2s
}
