package scgi

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// browserRequest is a typical browser GET with a session cookie, as net/http serves it.
func browserRequest() *http.Request {
	r := httptest.NewRequest("GET", "http://shop.example.org/cart/items?page=2&sort=price", nil)
	r.RemoteAddr = "198.51.100.7:53122"
	h := r.Header
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	h.Set("Accept-Language", "en-US,en;q=0.5")
	h.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	h.Set("Referer", "http://shop.example.org/cart")
	h.Set("Cookie", "QX_session=Xk3vQ9_aZ1b; theme=dark")
	h.Set("Upgrade-Insecure-Requests", "1")
	h.Set("Sec-Fetch-Dest", "document")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Connection", "keep-alive")
	return r
}

func BenchmarkProxyBuildEnv(b *testing.B) {
	r := browserRequest()
	var h headerBuf
	b.ReportAllocs()
	for b.Loop() {
		if err := buildEnv(&h, r, 0, "", nil); err != nil {
			b.Fatal(err)
		}
		ns, err := h.finish()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(ns)))
	}
}

func BenchmarkProxyBuildEnvFromSCGI(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "scgi", "nginx-scgi-request.bin"))
	require.NoError(b, err)
	r, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
	require.NoError(b, err)
	front := RequestEnv(r)
	var h headerBuf
	b.ReportAllocs()
	for b.Loop() {
		if err := buildEnv(&h, r, 0, "", front); err != nil {
			b.Fatal(err)
		}
		ns, err := h.finish()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(ns)))
	}
}

func BenchmarkProxyReadCGIResponse(b *testing.B) {
	head := "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n" +
		"Date: Fri, 21 Nov 2025 10:00:00 GMT\r\nExpires: -1\r\n" +
		"Set-Cookie: QX_session=\"Xk3vQ9_aZ1b\"; path=/\r\n\r\nhello"
	sr := strings.NewReader(head)
	br := bufio.NewReaderSize(sr, readBufSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		sr.Reset(head)
		br.Reset(sr)
		resp, err := readCGIResponse(br)
		if err != nil || resp.status != 200 {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyServeHTTP measures the whole proxy path in process: a request through
// Proxy.ServeHTTP to a Go SCGI backend (scgi.Serve) on loopback TCP and back.
func BenchmarkProxyServeHTTP(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from go\n")
	})}
	go srv.Serve(l)
	defer srv.Close()
	p, err := NewProxy(l.Addr().String())
	require.NoError(b, err)
	p.ErrorLog = slog.New(slog.NewTextHandler(io.Discard, nil))
	r := browserRequest()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.Len() != 14 {
			b.Fatalf("%d %q", w.Code, w.Body)
		}
	}
}
