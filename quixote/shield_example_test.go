package quixote_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/qxbridge/qxbridge/quixote"
)

// A Shield in front of the handler that forwards to the Python workers (an
// scgi.Proxy; here a handler that shows what it receives): a session cookie that
// session3 would take for a file path is cut out, and the other cookies pass as they
// came.
func ExampleShield() {
	toPython := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("Python receives Cookie: %q\n", r.Header.Get("Cookie"))
	})
	shield := &quixote.Shield{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), // a warning per request cleaned
		Removed: func(r *http.Request, n int) {
			fmt.Printf("removed %d session cookie(s)\n", n)
		},
	}
	h := shield.Handler(toPython)

	for _, cookie := range []string{
		`theme=dark; QX_session="../../etc/passwd"`,
		`theme=dark; QX_session=KyPJ1fkwwK8`,
	} {
		r := httptest.NewRequest(http.MethodGet, "/py/page", nil)
		r.Header.Set("Cookie", cookie)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// removed 1 session cookie(s)
	// Python receives Cookie: "theme=dark;"
	// Python receives Cookie: "theme=dark; QX_session=KyPJ1fkwwK8"
}
