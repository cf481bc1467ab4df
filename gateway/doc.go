// Package gateway is the gateway a Quixote site puts between its front server (nginx,
// Apache, lighttpd) and its Python workers to move to Go one URL at a time. It serves
// the routes already written in Go, with the Quixote sessions both sides share
// (session3's session files, under the same flock(2) locks), and forwards every other
// route over SCGI to the Python workers.
//
// # Registering a handler
//
// A Go page is an ordinary http.Handler, registered under a name; routes name it as
// their target, in code, in flags (-route /reports/=reports) or in the configuration
// file. The gateway serves it behind the session manager (quixote.Manager), so the
// handler reads and changes the request's session with quixote.SessionFrom:
//
//	func main() {
//		g := gateway.New()
//		g.HandleFunc("reports", func(w http.ResponseWriter, r *http.Request) {
//			s := quixote.SessionFrom(r) // loaded from the session directory, saved after
//			user, _ := s.UserString()
//			fmt.Fprintf(w, "reports for %s\n", user)
//		})
//		g.Main()
//	}
//
// and the program runs as the stock scgi-gateway does, with its own page in the routing:
//
//	myapp-gateway -scgi unix:/run/qxbridge/gateway.sock -sessions /var/lib/myapp/sessions \
//	    -route /reports/=reports -route /=scgi://127.0.0.1:4000
//
// Main gives the program every flag of scgi-gateway, the sessions administration
// commands, graceful shutdown on SIGTERM and SIGINT, systemd socket activation, the
// request log and the metrics. A program that runs its own listeners sets Config
// instead, and calls Open, then Serve, ServeSCGI or ServeMetrics, and Shutdown.
//
// # Routes
//
// A Route maps a path prefix to a Go handler's name or to a pool of Python workers
// (scgi://HOST:PORT[,HOST:PORT...], scgi+unix:///PATH); the longest matching prefix
// wins, and a path no route matches is answered 404. A mounted route (Route.Mount,
// -mount) gives its application SCRIPT_NAME = the prefix and PATH_INFO = the rest, as a
// Quixote application configured for a sub-path expects.
//
// Every request forwarded to Python passes quixote.Shield first: a session cookie that
// Quixote would read as an invalid session id (session3 uses the cookie value as a
// file name unchecked) is cut out of the request, logged and counted. Go routes read
// the session id with the same cookie grammar, so both sides pick the same session.
package gateway
