package gateway_test

import (
	"net/http"

	"github.com/qxbridge/qxbridge/gateway"
)

// A Python route on its way to Go: the Go rewrite of /cart/ is registered as
// "cart" and named as the route's candidate. Python keeps answering 90% of the
// sessions, with the candidate shadowed beside it and compared; 10% are served by
// the candidate, and Python answers for it when it fails a GET or HEAD. Raising
// Rollout (in the configuration file, then SIGHUP) moves more sessions to Go, never
// back.
func ExampleRoute_candidate() {
	g := gateway.New()
	g.HandleFunc("cart", func(w http.ResponseWriter, r *http.Request) {
		// the Go page, with quixote.SessionFrom(r) as usual
	})
	g.Config.Routes = []gateway.Route{
		{Prefix: "/cart/", Target: "scgi://127.0.0.1:4000", Candidate: "cart", Shadow: true, Rollout: 10, Fallback: true},
		{Prefix: "/", Target: "scgi://127.0.0.1:4000"},
	}
	// What the shadow comparison ignores: the form token Python and Go draw at
	// random.
	g.Config.Cutover.Replace = []gateway.Replace{{Pattern: `name="_form_token" value="[^"]*"`, With: `name="_form_token"`}}
	g.Main()
}
