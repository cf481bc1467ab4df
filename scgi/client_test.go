package scgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// netConnStub satisfies net.Conn for tests that supply Read and Write themselves.
type netConnStub struct{}

func (netConnStub) Read([]byte) (int, error)         { return 0, io.EOF }
func (netConnStub) Write(p []byte) (int, error)      { return len(p), nil }
func (netConnStub) Close() error                     { return nil }
func (netConnStub) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (netConnStub) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (netConnStub) SetDeadline(time.Time) error      { return nil }
func (netConnStub) SetReadDeadline(time.Time) error  { return nil }
func (netConnStub) SetWriteDeadline(time.Time) error { return nil }

func parseCGI(raw string) (*backendResponse, string, error) {
	resp, err := readCGIResponse(bufio.NewReaderSize(strings.NewReader(raw), readBufSize))
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.body)
	return resp, string(body), err
}

func TestReadCGIResponse(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		status    int
		header    http.Header
		body      string
	}{
		{"status with reason", "Status: 200 OK\r\nContent-Type: text/html\r\n\r\n<p>", 200,
			http.Header{"Content-Type": {"text/html"}}, "<p>"},
		{"status without reason", "Status: 404\r\n\r\nnope", 404, http.Header{}, "nope"},
		{"no status", "Content-Type: text/plain\r\n\r\nok", 200, http.Header{"Content-Type": {"text/plain"}}, "ok"},
		{"Location without Status", "Location: /x\r\n\r\n", 302, http.Header{"Location": {"/x"}}, ""},
		{"Location with Status", "Location: /x\r\nStatus: 301 Moved Permanently\r\n\r\n", 301,
			http.Header{"Location": {"/x"}}, ""},
		{"bare LF", "Status: 201 Created\nX-A: b\n\nbody\n", 201, http.Header{"X-A": {"b"}}, "body\n"},
		{"NPH status line", "HTTP/1.1 202 Accepted\r\nX-A: b\r\n\r\n", 202, http.Header{"X-A": {"b"}}, ""},
		{"repeated headers", "Set-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n", 200,
			http.Header{"Set-Cookie": {"a=1", "b=2"}}, ""},
		{"value whitespace", "X-A:   spaced \t\r\n\r\n", 200, http.Header{"X-A": {"spaced"}}, ""},
		{"Content-Length", "Content-Length: 3\r\n\r\nabcdef", 200, http.Header{"Content-Length": {"3"}}, "abc"},
		{"chunked inside SCGI", "Status: 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n" +
			"3\r\nabc\r\n5;ext=1\r\ndefgh\r\n0\r\n\r\n", 200, http.Header{}, "abcdefgh"},
		{"chunked any case", "Transfer-Encoding: Chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 200, http.Header{}, "z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body, err := parseCGI(c.raw)
			require.NoError(t, err)
			assert.Equal(t, c.status, resp.status)
			assert.Equal(t, c.header, resp.header)
			assert.Equal(t, c.body, body)
		})
	}
}

func TestReadCGIResponseRefuses(t *testing.T) {
	for _, c := range []struct{ name, raw string }{
		{"status too long", "Status: 2000\r\n\r\n"},
		{"status too short", "Status: 99\r\n\r\n"},
		{"informational status", "Status: 100 Continue\r\n\r\n"},
		{"status not digits", "Status: abc\r\n\r\n"},
		{"status glued reason", "Status: 200OK\r\n\r\n"},
		{"repeated status", "Status: 200\r\nStatus: 500\r\n\r\n"},
		{"line without colon", "Bad line\r\n\r\n"},
		{"space in name", "Bad Name: x\r\n\r\n"},
		{"empty name", ": x\r\n\r\n"},
		{"continuation line", "X-A: a\r\n  b\r\n\r\n"},
		{"NUL in value", "X-A: a\x00b\r\n\r\n"},
		{"CR in value", "X-A: a\rb\r\n\r\n"},
		{"other transfer coding", "Transfer-Encoding: gzip, chunked\r\n\r\n"},
		{"two transfer codings", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"negative length", "Content-Length: -1\r\n\r\n"},
		{"length list", "Content-Length: 1, 1\r\n\r\n"},
		{"two lengths", "Content-Length: 1\r\nContent-Length: 2\r\n\r\n"},
		{"ends in the header", "Status: 200 OK\r\nX-A: b"},
		{"line too long", "X-A: " + strings.Repeat("a", readBufSize) + "\r\n\r\n"},
		{"header too large", strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 1100) + "\r\n"},
		{"bad status line", "HTTP/1.1 2x0 OK\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readCGIResponse(bufio.NewReaderSize(strings.NewReader(c.raw), readBufSize))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadBackendResponse)
			assert.Equal(t, http.StatusBadGateway, StatusForError(err))
		})
	}

	_, err := readCGIResponse(bufio.NewReader(strings.NewReader("")))
	assert.ErrorIs(t, err, errBackendHungUp, "no byte at all: the worker hung up")
}

func TestCGIBodyCutOff(t *testing.T) {
	for _, raw := range []string{
		"Content-Length: 10\r\n\r\nabcde",
		"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
		"Transfer-Encoding: chunked\r\n\r\n5\r\nabc",
	} {
		_, body, err := parseCGI(raw)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "%q", raw)
		assert.True(t, strings.HasPrefix("abcde", body))
	}
	_, body, err := parseCGI("Status: 200 OK\r\n\r\nclose-delimited")
	assert.NoError(t, err)
	assert.Equal(t, "close-delimited", body)
}

func FuzzProxyCGIResponse(f *testing.F) {
	f.Add([]byte("Status: 200 OK\r\nContent-Type: text/html\r\n\r\nbody"))
	f.Add([]byte("Location: /x\r\n\r\n"))
	f.Add([]byte("Status: 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("Content-Length: 3\r\n\r\nabcdef"))
	f.Add([]byte("HTTP/1.0 404 Not Found\nX: y\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp, err := readCGIResponse(bufio.NewReaderSize(strings.NewReader(string(raw)), readBufSize))
		if err != nil {
			if StatusForError(err) != http.StatusBadGateway {
				t.Fatalf("error %v would not answer 502", err)
			}
			return
		}
		if resp.status < 200 || resp.status > 599 {
			t.Fatalf("status %d", resp.status)
		}
		for _, k := range []string{"Status", "Transfer-Encoding"} {
			if _, ok := resp.header[k]; ok {
				t.Fatalf("%s header passed on", k)
			}
		}
		if cl, ok := resp.header["Content-Length"]; ok {
			er, exact := resp.body.(*exactReader)
			want, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
			if !exact || err != nil || er.n != want {
				t.Fatalf("Content-Length %q not enforced on the body", cl)
			}
		}
		n, _ := io.Copy(io.Discard, resp.body)
		if n > int64(len(raw)) {
			t.Fatalf("body of %d bytes from %d bytes of input", n, len(raw))
		}
	})
}
