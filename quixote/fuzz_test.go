package quixote

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/store"
)

// FuzzQuixoteSessionDecode feeds arbitrary bytes to Decode: it must never panic;
// what it accepts must be usable through the whole API and, once encoded, decode
// again to the same session. Seeds: the session3 and session4 fixtures
// (testdata/fuzz).
func FuzzQuixoteSessionDecode(f *testing.F) {
	for _, name := range fixtures {
		f.Add(fixture(f, name))
	}
	for _, name := range session4Fixtures {
		f.Add(session4Fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data, shopClass)
		if err != nil {
			return
		}
		id := s.ID()
		_ = s.User()
		_, _ = s.UserString()
		_ = s.RemoteAddress()
		_ = s.CreationTime()
		_ = s.AccessTime()
		_ = s.HasInfo()
		_ = s.keep()
		for _, name := range s.Names() {
			v, ok := s.Get(name)
			if !ok {
				t.Fatalf("Names lists %q but Get does not find it", name)
			}
			_ = Truthy(v)
		}
		for _, k := range s.Keys() {
			if _, ok := s.Item(k); !ok {
				t.Fatalf("Keys lists %v but Item does not find it", k)
			}
		}
		tokens := s.FormTokens()
		s.Touch(time.Now())
		tok := s.CreateFormToken()
		if !s.HasFormToken(tok) || !s.RemoveFormToken(tok) {
			t.Fatal("a new form token is not there")
		}
		_, _ = s.CSRFToken()
		out, err := s.Encode()
		if err != nil {
			return // e.g. a value the encoder refuses to write back; the manager logs it
		}
		again, err := Decode(out, shopClass)
		if err != nil {
			t.Fatalf("re-decoding an encoded session: %v", err)
		}
		if again.ID() != id || len(again.FormTokens()) != len(tokens) {
			t.Fatalf("session changed across encode/decode: id %q -> %q, %d -> %d tokens",
				id, again.ID(), len(tokens), len(again.FormTokens()))
		}
	})
}

// FuzzQuixoteManagerCookie sends arbitrary Cookie headers through the middleware:
// no panic, a normal response, and no invalid id ever reaches the store (memStore
// fails such a Load, which would show as a warning).
func FuzzQuixoteManagerCookie(f *testing.F) {
	for _, seed := range []string{
		`QX_session="4qihCikDywk"`, `QX_session=4qihCikDywk`, `QX_session=""`, `QX_session=*del*`,
		`QX_session="../../etc/passwd"`, `a=1; QX_session=x; QX_session=y`, `QX_session="\"`, "",
	} {
		f.Add(seed)
	}
	st := newMemStore()
	st.put("4qihCikDywk", fixture(f, "session3-counter-tokens.pkl"))
	logger, logs := newLogger()
	m := NewManager(st)
	m.Logger = logger
	h := m.Handler(testApp())
	f.Fuzz(func(t *testing.T, cookie string) {
		logs.reset()
		req := httptest.NewRequest("GET", "/status", nil)
		req.Header["Cookie"] = []string{cookie}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for cookie %q: %s", rec.Code, cookie, rec.Body)
		}
		id, _ := m.Cookie.sessionID(req)
		if id != "" && store.ValidID(id) == nil {
			return
		}
		for _, w := range logs.warnings() {
			if !strings.Contains(w, "invalid id") {
				t.Fatalf("unexpected record for cookie %q: %s", cookie, w)
			}
		}
	})
}
