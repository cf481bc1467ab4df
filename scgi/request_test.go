package scgi

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readCaptureRequest(t *testing.T, name string) *http.Request {
	t.Helper()
	req, err := ReadRequest(bufio.NewReader(bytes.NewReader(readCapture(t, name))), 0)
	require.NoError(t, err)
	return req
}

func TestReadRequestNginxGET(t *testing.T) {
	req := readCaptureRequest(t, "nginx-scgi-request.bin")
	assert.Equal(t, "GET", req.Method)
	assert.Equal(t, "/counter?x=1&y=%2F", req.RequestURI)
	assert.Equal(t, &url.URL{Path: "/counter", RawQuery: "x=1&y=%2F"}, req.URL)
	assert.Equal(t, url.Values{"x": {"1"}, "y": {"/"}}, req.URL.Query())
	assert.Equal(t, "HTTP/1.1", req.Proto)
	assert.Equal(t, 1, req.ProtoMajor)
	assert.Equal(t, 1, req.ProtoMinor)
	assert.Equal(t, "127.0.0.1", req.Host)
	assert.Equal(t, "127.0.0.1:42972", req.RemoteAddr)
	assert.Nil(t, req.TLS)
	assert.Equal(t, int64(0), req.ContentLength)
	assert.Equal(t, http.NoBody, req.Body)
	assert.Equal(t, http.Header{
		"User-Agent": {"curl/7.88.1"},
		"Accept":     {"*/*"},
		"Cookie":     {"QX_session=0123456789abcdef"},
	}, req.Header, "no Host, no empty Content-Type, no Content-Length for a bodiless GET")
	c, err := req.Cookie("QX_session")
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef", c.Value)

	assert.Equal(t, captureEnvs["nginx-scgi-request.bin"], RequestEnv(req))
	env := ProcessEnv(req)
	assert.Equal(t, "", env["SCRIPT_NAME"])
	assert.Equal(t, "/counter", env["PATH_INFO"])
	assert.Equal(t, "127.0.0.1", env["REMOTE_ADDR"])
	assert.Equal(t, "/var/www/html", env["DOCUMENT_ROOT"])
	assert.Len(t, env, 20)
}

func TestReadRequestNginxPOST(t *testing.T) {
	req := readCaptureRequest(t, "nginx-scgi-request-post.bin")
	assert.Equal(t, "POST", req.Method)
	assert.Equal(t, "/login", req.RequestURI)
	assert.Equal(t, "/login", req.URL.Path)
	assert.Equal(t, int64(13), req.ContentLength)
	assert.Equal(t, "127.0.0.1:42976", req.RemoteAddr)
	assert.Equal(t, http.Header{
		"User-Agent":     {"curl/7.88.1"},
		"Accept":         {"*/*"},
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Content-Length": {"13"},
	}, req.Header, "Content-Type and Content-Length once each, from the CGI variables")
	require.NoError(t, req.ParseForm())
	assert.Equal(t, "TestUser", req.PostForm.Get("name"))
	n, err := req.Body.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.Equal(t, io.EOF, err, "the body ends after CONTENT_LENGTH bytes")
}

func TestReadRequestNginxRepeatedHeaders(t *testing.T) {
	req := readCaptureRequest(t, "nginx-scgi-request-dupheaders.bin")
	assert.Equal(t, "evil.example", req.Host, "Host is what nginx passed as HTTP_HOST")
	assert.Equal(t, []string{"a=1", "QX_session=0123456789abcdef"}, req.Header["Cookie"])
	assert.Equal(t, []string{"1", "2"}, req.Header["X-Dup"])
	assert.Equal(t, "1", req.Header.Get("X-Dup"))
	var names []string
	for _, c := range req.Cookies() {
		names = append(names, c.Name+"="+c.Value)
	}
	assert.Equal(t, []string{"a=1", "QX_session=0123456789abcdef"}, names, "cookies of both Cookie lines, as net/http gives them")

	assert.Equal(t, []string{"a=1", "QX_session=0123456789abcdef"}, RequestEnv(req).Values("HTTP_COOKIE"), "the raw env keeps both")
	assert.Equal(t, "a=1; QX_session=0123456789abcdef", ProcessEnv(req)["HTTP_COOKIE"])
	assert.Equal(t, "1, 2", ProcessEnv(req)["HTTP_X_DUP"])
}

func TestProcessEnvOfOtherRequests(t *testing.T) {
	req, err := http.NewRequest("GET", "http://example.com/", nil)
	require.NoError(t, err)
	assert.Nil(t, ProcessEnv(req))
	assert.Nil(t, RequestEnv(req))
}

func envOf(pairs ...string) Env {
	var env Env
	for i := 0; i < len(pairs); i += 2 {
		env = append(env, Var{pairs[i], pairs[i+1]})
	}
	return env
}

func TestRequestFromEnvFields(t *testing.T) {
	t.Run("URL from SCRIPT_NAME, PATH_INFO and QUERY_STRING without REQUEST_URI", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
			"SCRIPT_NAME", "/app", "PATH_INFO", "/a b/ü", "QUERY_STRING", "q=1&r=%20"))
		require.NoError(t, err)
		assert.Equal(t, "/app/a b/ü", req.URL.Path)
		assert.Equal(t, "q=1&r=%20", req.URL.RawQuery)
		assert.Equal(t, "/app/a%20b/%C3%BC?q=1&r=%20", req.RequestURI)
	})
	t.Run("no path at all is /", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET"))
		require.NoError(t, err)
		assert.Equal(t, "/", req.URL.Path)
		assert.Equal(t, "/", req.RequestURI)
		assert.Equal(t, "HTTP/1.0", req.Proto, "default protocol")
		assert.Equal(t, "", req.RemoteAddr)
	})
	t.Run("Host from SERVER_NAME and a non-default port", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "SERVER_NAME", "example.org", "SERVER_PORT", "8080"))
		require.NoError(t, err)
		assert.Equal(t, "example.org:8080", req.Host)
	})
	t.Run("Host from SERVER_NAME, default port omitted", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "SERVER_NAME", "example.org", "SERVER_PORT", "80"))
		require.NoError(t, err)
		assert.Equal(t, "example.org", req.Host)
		req, err = RequestFromEnv(envOf("REQUEST_METHOD", "GET", "SERVER_NAME", "example.org", "SERVER_PORT", "443", "HTTPS", "on"))
		require.NoError(t, err)
		assert.Equal(t, "example.org", req.Host)
	})
	t.Run("HTTPS on gives a TLS state", func(t *testing.T) {
		for _, v := range []string{"on", "ON", "1"} {
			req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "HTTPS", v))
			require.NoError(t, err)
			require.NotNil(t, req.TLS, v)
			assert.True(t, req.TLS.HandshakeComplete)
		}
		for _, v := range []string{"", "off", "0"} {
			req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "HTTPS", v))
			require.NoError(t, err)
			assert.Nil(t, req.TLS, v)
		}
	})
	t.Run("IPv6 remote address", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "REMOTE_ADDR", "2001:db8::1", "REMOTE_PORT", "5000"))
		require.NoError(t, err)
		assert.Equal(t, "[2001:db8::1]:5000", req.RemoteAddr)
		req, err = RequestFromEnv(envOf("REQUEST_METHOD", "GET", "REMOTE_ADDR", "10.0.0.1"))
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.1:0", req.RemoteAddr)
	})
	t.Run("HTTP/2 and HTTP/1.0", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "SERVER_PROTOCOL", "HTTP/2.0"))
		require.NoError(t, err)
		assert.Equal(t, [3]any{"HTTP/2.0", 2, 0}, [3]any{req.Proto, req.ProtoMajor, req.ProtoMinor})
		req, err = RequestFromEnv(envOf("REQUEST_METHOD", "GET", "SERVER_PROTOCOL", "HTTP/1.0"))
		require.NoError(t, err)
		assert.Equal(t, [3]any{"HTTP/1.0", 1, 0}, [3]any{req.Proto, req.ProtoMajor, req.ProtoMinor})
	})
	t.Run("header names", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "GET", "HTTP_X_FORWARDED_HOST", "h",
			"HTTP_X_CUSTOM_HEADER_2", "v", "HTTP_TRANSFER_ENCODING", "chunked", "HTTP_HOST", "x.example",
			"HTTP_ACCEPT", ""))
		require.NoError(t, err)
		assert.Equal(t, http.Header{"X-Forwarded-Host": {"h"}, "X-Custom-Header-2": {"v"}, "Accept": {""}}, req.Header)
		assert.Equal(t, "x.example", req.Host)
		assert.Nil(t, req.TransferEncoding)
	})
	t.Run("Content-Length header when the client sent one, even 0", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("CONTENT_LENGTH", "0", "REQUEST_METHOD", "POST", "HTTP_CONTENT_LENGTH", "0"))
		require.NoError(t, err)
		assert.Equal(t, []string{"0"}, req.Header["Content-Length"])
	})
	t.Run("OPTIONS *", func(t *testing.T) {
		req, err := RequestFromEnv(envOf("REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "*"))
		require.NoError(t, err)
		assert.Equal(t, "*", req.RequestURI)
		assert.Equal(t, "*", req.URL.Path)
	})
}

func TestRequestFromEnvRejects(t *testing.T) {
	cases := map[string]Env{
		"no method":              envOf("REQUEST_URI", "/"),
		"method with a space":    envOf("REQUEST_METHOD", "GE T"),
		"bad protocol":           envOf("REQUEST_METHOD", "GET", "SERVER_PROTOCOL", "HTTP/one"),
		"relative REQUEST_URI":   envOf("REQUEST_METHOD", "GET", "REQUEST_URI", "no-slash"),
		"header name with colon": envOf("REQUEST_METHOD", "GET", "HTTP_X:Y", "v"),
		"empty header name":      envOf("REQUEST_METHOD", "GET", "HTTP_", "v"),
		"CR LF in header value":  envOf("REQUEST_METHOD", "GET", "HTTP_X_A", "v\r\nSet-Cookie: x=1"),
		"bad host":               envOf("REQUEST_METHOD", "GET", "HTTP_HOST", "a/b"),
		"bad CONTENT_LENGTH":     envOf("CONTENT_LENGTH", "x", "REQUEST_METHOD", "GET"),
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := RequestFromEnv(env)
			assert.Nil(t, req)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestReadRequestBody(t *testing.T) {
	t.Run("exact", func(t *testing.T) {
		raw := buildSCGI("hello, world and more", "CONTENT_LENGTH", "12", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/")
		br := bufio.NewReader(bytes.NewReader(raw))
		req, err := ReadRequest(br, 0)
		require.NoError(t, err)
		b, err := io.ReadAll(req.Body)
		require.NoError(t, err)
		assert.Equal(t, "hello, world", string(b))
		rest, _ := io.ReadAll(br)
		assert.Equal(t, " and more", string(rest), "the body never reads past CONTENT_LENGTH")
	})
	t.Run("short", func(t *testing.T) {
		raw := buildSCGI("only this", "CONTENT_LENGTH", "100", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/")
		req, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
		require.NoError(t, err)
		b, err := io.ReadAll(req.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.ErrorContains(t, err, "91 bytes short")
		assert.Equal(t, "only this", string(b))
		_, err = req.Body.Read(make([]byte, 10))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the error sticks")
	})
	t.Run("read after close", func(t *testing.T) {
		raw := buildSCGI("abc", "CONTENT_LENGTH", "3", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/")
		req, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
		require.NoError(t, err)
		require.NoError(t, req.Body.Close())
		_, err = req.Body.Read(make([]byte, 10))
		assert.ErrorIs(t, err, http.ErrBodyReadAfterClose)
	})
	t.Run("malformed request line reported", func(t *testing.T) {
		raw := buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "")
		_, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
		assert.ErrorIs(t, err, ErrMalformed)
		assert.True(t, strings.Contains(err.Error(), "REQUEST_METHOD"))
	})
}
