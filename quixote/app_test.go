package quixote

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/qxbridge/qxbridge/pickle"
)

// testApp serves the session pages of qxsite (testdata/py/sites/qxsite) from Go, plus a few that only
// Go can have (streaming, panics), for the manager tests and the turn-taking test.
func testApp() http.Handler {
	mux := http.NewServeMux()
	page := func(path string, f func(w http.ResponseWriter, r *http.Request, s *Session)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s := SessionFrom(r)
			if s == nil {
				http.Error(w, "no session", http.StatusInternalServerError)
				return
			}
			f(w, r, s)
		})
	}
	counter := func(s *Session) int64 {
		n, _ := s.GetInt("counter")
		n++
		if err := s.Set("counter", n); err != nil {
			panic(err)
		}
		return n
	}
	page("/login", func(w http.ResponseWriter, r *http.Request, s *Session) {
		var user any
		if u := r.FormValue("user"); u != "" {
			user = u
		}
		_ = s.SetUser(user)
		fmt.Fprint(w, "ok")
	})
	page("/login-renew", func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.RenewID()
		_ = s.SetUser(r.FormValue("user"))
		fmt.Fprint(w, "ok")
	})
	page("/late-renew", func(w http.ResponseWriter, r *http.Request, s *Session) {
		w.WriteHeader(http.StatusOK)
		s.RenewID()
		_ = s.SetUser("admin")
	})
	page("/logout", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.SetUser(nil)
		fmt.Fprint(w, "ok")
	})
	page("/expire", func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Expire()
		fmt.Fprint(w, "ok")
	})
	page("/counter", func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, counter(s))
	})
	page("/token", func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.CreateFormToken())
	})
	page("/submit", func(w http.ResponseWriter, r *http.Request, s *Session) {
		if s.CheckFormToken(r) {
			fmt.Fprint(w, "accepted")
			return
		}
		http.Error(w, "rejected", http.StatusForbidden)
	})
	page("/item", func(w http.ResponseWriter, r *http.Request, s *Session) {
		if err := s.SetItem(r.FormValue("key"), r.FormValue("value")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "ok")
	})
	page("/fail", func(w http.ResponseWriter, r *http.Request, s *Session) {
		counter(s)
		http.Error(w, "internal error: failing on purpose", http.StatusInternalServerError)
	})
	page("/status", func(w http.ResponseWriter, r *http.Request, s *Session) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sessionStatus(s))
	})
	// Go-only pages.
	page("/login-fail", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.SetUser("mallory")
		http.Error(w, "failing after login", http.StatusBadGateway)
	})
	page("/login-403", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.SetUser(r.FormValue("user"))
		http.Error(w, "forbidden, but the request succeeded", http.StatusForbidden)
	})
	page("/panic", func(w http.ResponseWriter, r *http.Request, s *Session) {
		counter(s)
		_ = s.SetUser("panicker")
		panic(http.ErrAbortHandler)
	})
	page("/login-then-stream", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.SetUser(r.FormValue("user"))
		fmt.Fprint(w, "first chunk\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		fmt.Fprint(w, "second chunk\n")
	})
	page("/stream-then-login", func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, "first chunk\n")
		w.(http.Flusher).Flush()
		_ = s.SetUser(r.FormValue("user"))
		fmt.Fprint(w, "second chunk\n")
	})
	page("/stream-then-logout", func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, "first chunk\n")
		w.(http.Flusher).Flush()
		_ = s.SetUser(nil)
	})
	return mux
}

// sessionStatus is the JSON of qxsite's status page for the same session.
func sessionStatus(s *Session) map[string]any {
	attr := func(name string) any { v, _ := s.Object().Attr(name); return v }
	attrs := map[string]any{}
	for _, name := range s.Names() {
		v, _ := s.Get(name)
		attrs[name] = jsonValue(v)
	}
	st := map[string]any{
		"class":          s.Class().String(),
		"id":             attr("id"),
		"user":           jsonValue(s.User()),
		"remote_address": attr("_remote_address"),
		"creation_time":  attr("_creation_time"),
		"access_time":    attr("_access_time"),
		"form_tokens":    s.FormTokens(),
		"has_info":       s.HasInfo(),
		"attrs":          attrs,
	}
	if d := s.Data(); d != nil {
		st["data"] = jsonValue(d)
	}
	return st
}

// jsonValue mirrors qxsite's json_value.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return v
	case *pickle.List:
		return jsonList(x.Items)
	case *pickle.Tuple:
		return jsonList(x.Items)
	case *pickle.Dict:
		m := map[string]any{}
		for k, val := range x.All() {
			ks, ok := k.(string)
			if !ok {
				return map[string]any{"$type": "builtins.dict"}
			}
			m[ks] = jsonValue(val)
		}
		return m
	}
	return map[string]any{"$type": pickle.TypeName(v)}
}

func jsonList(items []any) []any {
	out := make([]any, len(items))
	for i, v := range items {
		out[i] = jsonValue(v)
	}
	return out
}

// atoi is strconv.Atoi for tests that read counters from pages.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
