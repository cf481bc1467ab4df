// Command scgi-gateway is the gateway a Quixote site deploys to move to Go one URL at a
// time, with the built-in demo application as its only Go handler. Behind nginx
// (scgi_pass), Apache (mod_proxy_scgi) or lighttpd it receives SCGI requests, serves
// the Go routes with Quixote sessions from the session directory the Python side
// uses, and forwards every other route over SCGI to the Python workers.
//
// Usage:
//
//	scgi-gateway [flags]                           serve (see -help)
//	scgi-gateway sessions [-sessions DIR] COMMAND  inspect and edit the sessions
//	scgi-gateway shadow -metrics ADDR report       a running gateway's shadow comparisons
//
// With no flags it serves HTTP on 127.0.0.1:8080 with the demo application's Go pages
// at /, and sessions in ./sessions; with -route /=demo -route /py/=scgi://127.0.0.1:4000
// the demo's Python side (demo/python) serves /py/ beside them. The demo lets anyone
// log in under any name: it serves only where it is asked for by a route, or when
// none of -route, -mount, -config, -sessions and -scgi is given (no deployment
// names its session store or front server and then gets the demo at /; it gets "no
// routes" instead). Every flag,
// the admin commands, signals, socket activation, metrics and logs are package
// gateway's (see gateway.Gateway.Run); a site's own gateway is this program with its
// own handlers registered.
package main

import (
	"github.com/qxbridge/qxbridge/demo"
	"github.com/qxbridge/qxbridge/gateway"
)

func main() {
	newGateway().Main()
}

// newGateway returns the stock gateway: the demo registered as "demo", serving / to
// try it out (gateway.Gateway.TryRoutes).
func newGateway() *gateway.Gateway {
	g := gateway.New()
	g.Handle("demo", demo.New(g.Sessions, nil))
	g.TryRoutes = []gateway.Route{{Prefix: "/", Target: "demo"}}
	return g
}
