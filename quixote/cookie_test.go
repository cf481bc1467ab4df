package quixote

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// TestCookiesParseInPython feeds the Set-Cookie values the manager writes to
// Python's http.cookies and to the Quixote-style request parser, and checks both
// read back the name, value and attributes.
func TestCookiesParseInPython(t *testing.T) {
	testpeer.Python(t)
	id := NewID()
	type want struct {
		value, path, domain, maxAge, sameSite string
		secure, httpOnly                      bool
	}
	cases := []struct {
		c      Cookie
		value  string
		script string
		revoke bool
		want   want
	}{
		{Cookie{}, id, "", false, want{value: id, path: "/"}},
		{Cookie{}, "", "", true, want{value: "", path: "/", maxAge: "0"}},
		{Cookie{}, id, "/mount", false, want{value: id, path: "/mount/"}},
		{Cookie{Name: "sid", Path: "/p", Domain: "example.org", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode},
			id, "/ignored", false, want{value: id, path: "/p", domain: "example.org", secure: true, httpOnly: true, sameSite: "Strict"}},
		{Cookie{Domain: ".example.org", Secure: true, SameSite: http.SameSiteNoneMode},
			"", "/app", true, want{value: "", path: "/app/", domain: ".example.org", maxAge: "0", secure: true, sameSite: "None"}},
	}
	var in bytes.Buffer
	for _, tc := range cases {
		in.WriteString(tc.c.header(tc.value, tc.script, tc.revoke) + "\n")
	}
	cmd := testpeer.PythonCmd(t, "quixote_cookie_check.py")
	cmd.Stdin = &in
	out, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, len(cases))
	for i, tc := range cases {
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &got), lines[i])
		require.NotContains(t, got, "error")
		assert.Equal(t, tc.c.name(), got["name"])
		assert.Equal(t, tc.want.value, got["value"])
		assert.Equal(t, `"`+tc.want.value+`"`, got["coded_value"], "the value is quoted")
		assert.Equal(t, tc.want.value, got["request_value"], "Quixote's request parser unquotes it")
		assert.Equal(t, tc.want.path, got["path"])
		for attr, v := range map[string]string{"domain": tc.want.domain, "max-age": tc.want.maxAge, "samesite": tc.want.sameSite} {
			if v == "" {
				assert.NotContains(t, got, attr)
			} else {
				assert.Equal(t, v, got[attr], attr)
			}
		}
		assert.Equal(t, tc.want.secure, got["secure"] == true)
		assert.Equal(t, tc.want.httpOnly, got["httponly"] == true)
	}
}

// TestCookieRoundTripGo checks Go's own client and server read the quoted value.
func TestCookieRoundTripGo(t *testing.T) {
	c := &Cookie{}
	id := NewID()
	rec := httptest.NewRecorder()
	rec.Header().Add("Set-Cookie", c.header(id, "", false))
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, id, cookies[0].Value)
	assert.True(t, cookies[0].Quoted)
	assert.Equal(t, "/", cookies[0].Path)

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", `other=1; QX_session="`+id+`"`)
	assert.Equal(t, id, c.SessionID(r))
	r.Header.Set("Cookie", `QX_session=*del*`)
	assert.Empty(t, c.SessionID(r))
}
