package scgi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildSCGI returns the raw SCGI request with the given name/value pairs in order,
// followed by body.
func buildSCGI(body string, pairs ...string) []byte {
	if len(pairs)%2 != 0 {
		panic("buildSCGI: odd number of strings")
	}
	var h strings.Builder
	for _, s := range pairs {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return []byte(fmt.Sprintf("%d:%s,%s", h.Len(), h.String(), body))
}

// minimalPairs is the smallest valid header a front end can send for a GET.
func minimalPairs(extra ...string) []string {
	return append([]string{"CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET", "REQUEST_URI", "/"}, extra...)
}

func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "scgi", name))
	require.NoError(t, err)
	return b
}

// The three requests nginx 1.22 sent (Debian scgi_params plus SCRIPT_NAME and
// PATH_INFO), variable by variable in wire order.
var captureEnvs = map[string]Env{
	"nginx-scgi-request.bin": {
		{"CONTENT_LENGTH", "0"}, {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/counter?x=1&y=%2F"},
		{"QUERY_STRING", "x=1&y=%2F"}, {"CONTENT_TYPE", ""}, {"DOCUMENT_URI", "/counter"},
		{"DOCUMENT_ROOT", "/var/www/html"}, {"SCGI", "1"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_SCHEME", "http"}, {"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "42972"},
		{"SERVER_PORT", "8081"}, {"SERVER_NAME", "localhost"}, {"HTTP_HOST", "127.0.0.1"},
		{"SCRIPT_NAME", ""}, {"PATH_INFO", "/counter"}, {"HTTP_USER_AGENT", "curl/7.88.1"},
		{"HTTP_ACCEPT", "*/*"}, {"HTTP_COOKIE", "QX_session=0123456789abcdef"},
	},
	"nginx-scgi-request-post.bin": {
		{"CONTENT_LENGTH", "13"}, {"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/login"},
		{"QUERY_STRING", ""}, {"CONTENT_TYPE", "application/x-www-form-urlencoded"},
		{"DOCUMENT_URI", "/login"}, {"DOCUMENT_ROOT", "/var/www/html"}, {"SCGI", "1"},
		{"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "http"}, {"REMOTE_ADDR", "127.0.0.1"},
		{"REMOTE_PORT", "42976"}, {"SERVER_PORT", "8081"}, {"SERVER_NAME", "localhost"},
		{"HTTP_HOST", "127.0.0.1"}, {"SCRIPT_NAME", ""}, {"PATH_INFO", "/login"},
		{"HTTP_USER_AGENT", "curl/7.88.1"}, {"HTTP_ACCEPT", "*/*"}, {"HTTP_CONTENT_LENGTH", "13"},
		{"HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"},
	},
	"nginx-scgi-request-dupheaders.bin": {
		{"CONTENT_LENGTH", "0"}, {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/c"},
		{"QUERY_STRING", ""}, {"CONTENT_TYPE", ""}, {"DOCUMENT_URI", "/c"},
		{"DOCUMENT_ROOT", "/var/www/html"}, {"SCGI", "1"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_SCHEME", "http"}, {"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "42990"},
		{"SERVER_PORT", "8081"}, {"SERVER_NAME", "localhost"}, {"HTTP_HOST", "evil.example"},
		{"SCRIPT_NAME", ""}, {"PATH_INFO", "/c"}, {"HTTP_USER_AGENT", "curl/7.88.1"},
		{"HTTP_ACCEPT", "*/*"}, {"HTTP_COOKIE", "a=1"}, {"HTTP_COOKIE", "QX_session=0123456789abcdef"},
		{"HTTP_X_DUP", "1"}, {"HTTP_X_DUP", "2"},
	},
}

var captureBodies = map[string]string{
	"nginx-scgi-request.bin":            "",
	"nginx-scgi-request-post.bin":       "name=TestUser",
	"nginx-scgi-request-dupheaders.bin": "",
}

func TestReadEnvNginxCaptures(t *testing.T) {
	for name, want := range captureEnvs {
		t.Run(name, func(t *testing.T) {
			br := bufio.NewReader(bytes.NewReader(readCapture(t, name)))
			env, err := ReadEnv(br, 0)
			require.NoError(t, err)
			assert.Equal(t, want, env)
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Equal(t, captureBodies[name], string(rest), "the reader stops at the first body byte")
		})
	}
}

func TestEnvAccessors(t *testing.T) {
	env := captureEnvs["nginx-scgi-request-dupheaders.bin"]
	assert.Equal(t, "QX_session=0123456789abcdef", env.Get("HTTP_COOKIE"), "Get returns the last value, as python-scgi keeps")
	assert.Equal(t, []string{"a=1", "QX_session=0123456789abcdef"}, env.Values("HTTP_COOKIE"))
	assert.Equal(t, "", env.Get("HTTPS"))
	v, ok := env.Lookup("QUERY_STRING")
	assert.True(t, ok)
	assert.Equal(t, "", v)
	_, ok = env.Lookup("HTTPS")
	assert.False(t, ok)
	assert.Nil(t, env.Values("HTTPS"))

	m := env.Map()
	assert.Len(t, m, 21, "23 variables, two names repeated once")
	assert.Equal(t, "a=1; QX_session=0123456789abcdef", m["HTTP_COOKIE"], "cookie lines join like one Cookie header")
	assert.Equal(t, "1, 2", m["HTTP_X_DUP"], "other headers join as a list")
	assert.Equal(t, "/c", m["PATH_INFO"])
	assert.Equal(t, "", m["SCRIPT_NAME"])

	hand := Env{{"X", "1"}, {"X", "2"}, {"HTTP_HOST", "a"}, {"HTTP_HOST", "a:8080"}}
	assert.Equal(t, "2", hand.Map()["X"], "a repeated non-HTTP name keeps the last value, as python-scgi")
	assert.Equal(t, "a:8080", hand.Map()["HTTP_HOST"], "a repeated HTTP_HOST is configuration, not two Host lines")
}

func TestReadEnvAcceptsValidEdgeCases(t *testing.T) {
	cases := map[string]struct {
		raw  []byte
		want Env
	}{
		"minimal": {
			raw:  buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1"),
			want: Env{{"CONTENT_LENGTH", "0"}, {"SCGI", "1"}},
		},
		"empty values and a value with spaces and bytes >= 0x80": {
			raw:  buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "QUERY_STRING", "", "HTTP_X", "caf\xc3\xa9 \x01"),
			want: Env{{"CONTENT_LENGTH", "0"}, {"SCGI", "1"}, {"QUERY_STRING", ""}, {"HTTP_X", "caf\xc3\xa9 \x01"}},
		},
		"leading zeros in CONTENT_LENGTH are still digits": {
			raw:  buildSCGI("abc", "CONTENT_LENGTH", "003", "SCGI", "1"),
			want: Env{{"CONTENT_LENGTH", "003"}, {"SCGI", "1"}},
		},
		"repeated HTTP_* header": {
			raw:  buildSCGI("", "CONTENT_LENGTH", "0", "HTTP_A", "1", "SCGI", "1", "HTTP_A", "2", "HTTP_A", "3"),
			want: Env{{"CONTENT_LENGTH", "0"}, {"HTTP_A", "1"}, {"SCGI", "1"}, {"HTTP_A", "2"}, {"HTTP_A", "3"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env, err := ReadEnv(bufio.NewReader(bytes.NewReader(tc.raw)), 0)
			require.NoError(t, err)
			assert.Equal(t, tc.want, env)
		})
	}
}

// netstring prefixes header with its length and a colon.
func netstring(header string) string { return fmt.Sprintf("%d:%s", len(header), header) }

// malformedCases are requests the parser must refuse, with the error they must give.
// They double as seeds of FuzzParse.
var malformedCases = []struct {
	name string
	raw  string
	want error
	why  string // in the error message
}{
	{"leading zero in length", "025:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "leading zero"},
	{"zero length with leading zero", "00:,", ErrMalformed, "leading zero"},
	{"empty length", ":CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "no length"},
	{"non-digit length", "2x:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "contains 'x'"},
	{"negative length", "-1:,", ErrMalformed, "contains '-'"},
	{"space before length", " 24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "contains ' '"},
	{"plus sign", "+24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "contains '+'"},
	{"HTTP request instead of SCGI", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrMalformed, "contains 'G'"},
	{"huge length", "99999999999999999999999999:", ErrHeaderTooLarge, "too large"},
	{"length just over the limit", "1048577:", ErrHeaderTooLarge, "too large"},
	{"missing comma", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00") + ";", ErrMalformed, "comma"},
	{"length one too short", "23:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", ErrMalformed, "comma"},
	{"empty header", netstring("") + ",", ErrMalformed, "empty header"},
	{"no NUL at the end", netstring("CONTENT_LENGTH\x000\x00SCGI\x001") + ",", ErrMalformed, "does not end with a NUL"},
	{"odd number of strings", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00") + ",", ErrMalformed, "name without a value"},
	{"empty name", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00\x00v\x00") + ",", ErrMalformed, "empty variable name"},
	{"CONTENT_LENGTH not first", netstring("SCGI\x001\x00CONTENT_LENGTH\x000\x00") + ",", ErrMalformed, "not CONTENT_LENGTH"},
	{"no CONTENT_LENGTH", netstring("SCGI\x001\x00") + ",", ErrMalformed, "not CONTENT_LENGTH"},
	{"empty CONTENT_LENGTH", netstring("CONTENT_LENGTH\x00\x00SCGI\x001\x00") + ",", ErrMalformed, "not a decimal number"},
	{"non-digit CONTENT_LENGTH", netstring("CONTENT_LENGTH\x00-1\x00SCGI\x001\x00") + ",", ErrMalformed, "not a decimal number"},
	{"CONTENT_LENGTH with space", netstring("CONTENT_LENGTH\x00 1\x00SCGI\x001\x00") + ",", ErrMalformed, "not a decimal number"},
	{"CONTENT_LENGTH overflow", netstring("CONTENT_LENGTH\x009999999999999999999999999\x00SCGI\x001\x00") + ",", ErrMalformed, "not a decimal number"},
	{"duplicate CONTENT_LENGTH", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x005\x00") + ",", ErrMalformed, `"CONTENT_LENGTH" repeated`},
	{"missing SCGI", netstring("CONTENT_LENGTH\x000\x00") + ",", ErrMalformed, "no SCGI variable"},
	{"SCGI not 1", netstring("CONTENT_LENGTH\x000\x00SCGI\x002\x00") + ",", ErrMalformed, `SCGI is "2"`},
	{"second SCGI not 1", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00SCGI\x000\x00") + ",", ErrMalformed, `SCGI is "0"`},
	{"duplicate HTTP_CONTENT_LENGTH", netstring("CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_CONTENT_LENGTH\x000\x00HTTP_CONTENT_LENGTH\x009\x00") + ",", ErrMalformed, `"HTTP_CONTENT_LENGTH" repeated`},
	{"truncated length", "24", io.ErrUnexpectedEOF, "unexpected EOF"},
	{"truncated header", "24:CONTENT_LENGTH\x000\x00SC", io.ErrUnexpectedEOF, "unexpected EOF"},
	{"truncated before comma", "24:CONTENT_LENGTH\x000\x00SCGI\x001\x00", io.ErrUnexpectedEOF, "unexpected EOF"},
	{"nothing at all", "", io.EOF, "EOF"},
}

func TestReadEnvRejectsMalformed(t *testing.T) {
	for _, tc := range malformedCases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ReadEnv(bufio.NewReader(strings.NewReader(tc.raw)), 0)
			require.Error(t, err)
			assert.Nil(t, env)
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, tc.why)
			if tc.want != ErrMalformed {
				assert.NotErrorIs(t, err, ErrMalformed)
			}
		})
	}
}

func TestReadEnvLengthLimit(t *testing.T) {
	raw := buildSCGI("", minimalPairs()...)
	limit := len(raw) - len(fmt.Sprint(len(raw))) - 2 // the header's exact length
	_, err := ReadEnv(bufio.NewReader(bytes.NewReader(raw)), limit)
	require.NoError(t, err, "a header of exactly the limit is accepted")
	_, err = ReadEnv(bufio.NewReader(bytes.NewReader(raw)), limit-1)
	assert.ErrorIs(t, err, ErrHeaderTooLarge)

	// The length is refused as soon as its digits pass the limit: the reader
	// never reads the rest, whatever follows.
	r := &countingReader{r: strings.NewReader("123456789:" + strings.Repeat("x", 1<<20))}
	_, err = ReadEnv(bufio.NewReaderSize(r, 16), 1000)
	assert.ErrorIs(t, err, ErrHeaderTooLarge)
	assert.LessOrEqual(t, r.n, 16)
}

func TestReadEnvMemoryFollowsInput(t *testing.T) {
	// A client that announces a header of the full megabyte and sends a few bytes
	// must not cost a megabyte: the buffer grows with what arrives.
	const rounds = 20
	raw := "1048576:CONTENT_LENGTH\x000\x00SCGI\x001\x00"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < rounds; i++ {
		_, err := ReadEnv(bufio.NewReader(strings.NewReader(raw)), 0)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	runtime.ReadMemStats(&after)
	perRound := (after.TotalAlloc - before.TotalAlloc) / rounds
	assert.Less(t, perRound, uint64(128<<10), "bytes allocated per truncated 1 MiB header")
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadEnvLargeHeader(t *testing.T) {
	// A header larger than the reader's buffer takes the incremental path.
	cookie := strings.Repeat("c", 200<<10)
	raw := buildSCGI("BODY", minimalPairs("HTTP_COOKIE", cookie)...)
	br := bufio.NewReader(bytes.NewReader(raw))
	env, err := ReadEnv(br, 0)
	require.NoError(t, err)
	assert.Equal(t, cookie, env.Get("HTTP_COOKIE"))
	rest, _ := io.ReadAll(br)
	assert.Equal(t, "BODY", string(rest))

	// Same size, comma missing.
	bad := bytes.Clone(raw)
	bad[len(bad)-len("BODY")-1] = ';'
	_, err = ReadEnv(bufio.NewReader(bytes.NewReader(bad)), 0)
	assert.ErrorIs(t, err, ErrMalformed)

	// Same size, cut short.
	_, err = ReadEnv(bufio.NewReader(bytes.NewReader(raw[:100<<10])), 0)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestReadEnvManyVariables(t *testing.T) {
	// Many names, some repeated: accepted in linear time; a repeated length is still
	// found far down the list.
	pairs := minimalPairs()
	for i := 0; i < 500; i++ {
		pairs = append(pairs, fmt.Sprintf("VAR_%d", i%400), "v")
	}
	env, err := ReadEnv(bufio.NewReader(bytes.NewReader(buildSCGI("", pairs...))), 0)
	require.NoError(t, err)
	assert.Len(t, env, 504)

	pairs = append(pairs, "HTTP_CONTENT_LENGTH", "1", "HTTP_CONTENT_LENGTH", "2")
	_, err = ReadEnv(bufio.NewReader(bytes.NewReader(buildSCGI("", pairs...))), 0)
	assert.ErrorIs(t, err, ErrMalformed)
	assert.ErrorContains(t, err, `"HTTP_CONTENT_LENGTH" repeated`)
}

// TestReadEnvRepeatedConfiguration: what nginx sends for `include scgi_params;`
// followed by `scgi_param HTTP_HOST $http_host;` (and the like) is accepted, and the
// last value counts, as in python-scgi.
func TestReadEnvRepeatedConfiguration(t *testing.T) {
	raw := buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
		"REQUEST_URI", "/x", "HTTPS", "", "SERVER_PORT", "80", "HTTP_HOST", "example.org",
		"HTTP_HOST", "example.org:8080", "HTTPS", "on", "SERVER_PORT", "8443", "SCGI", "1")
	r, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
	require.NoError(t, err)
	assert.Equal(t, "example.org:8080", r.Host)
	assert.NotNil(t, r.TLS, "the last HTTPS is on")
	assert.NotContains(t, r.Header, "Host")
	assert.Equal(t, "8443", ProcessEnv(r)["SERVER_PORT"])
	assert.Equal(t, "example.org:8080", ProcessEnv(r)["HTTP_HOST"])
}

// FuzzParse feeds arbitrary bytes to ReadRequest. It must never panic, must honour
// the header limit, and whatever it accepts must satisfy the SCGI rules: the
// environment re-encodes to the same header, and the body is exactly CONTENT_LENGTH
// bytes or an error.
func FuzzParse(f *testing.F) {
	for name := range captureEnvs {
		f.Add(readCapture(f, name))
	}
	for _, tc := range malformedCases {
		f.Add([]byte(tc.raw))
	}
	f.Add(buildSCGI("short", "CONTENT_LENGTH", "10", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/"))
	f.Add(buildSCGI("xyz", "CONTENT_LENGTH", "3", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/p?q"))
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		req, err := ReadRequest(br, limit)
		if err != nil {
			// A length whose digits (without a leading zero) pass the limit
			// must be refused as too large, whatever follows them.
			digits := 0
			for digits < len(data) && data[digits] >= '0' && data[digits] <= '9' {
				digits++
			}
			if digits > 0 && data[0] != '0' {
				n, convErr := strconv.Atoi(string(data[:min(digits, 10)]))
				if (convErr == nil && n > limit || digits > 10) && !errors.Is(err, ErrHeaderTooLarge) {
					t.Fatalf("length %q over the limit not refused as too large: %v", data[:digits], err)
				}
			}
			return
		}
		env := RequestEnv(req)
		require.NotEmpty(t, env)
		require.Equal(t, "CONTENT_LENGTH", env[0].Name)
		require.Equal(t, "1", env.Get("SCGI"))

		// Re-encoding gives back the exact header bytes.
		var pairs []string
		for _, v := range env {
			pairs = append(pairs, v.Name, v.Value)
		}
		reencoded := buildSCGI("", pairs...)
		require.True(t, bytes.HasPrefix(data, reencoded), "env does not re-encode to the input")

		rest := data[len(reencoded):]
		b, err := io.ReadAll(req.Body)
		if int64(len(rest)) >= req.ContentLength {
			require.NoError(t, err)
			require.Equal(t, rest[:req.ContentLength], b)
		} else {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.Equal(t, rest, b)
		}
	})
}

func BenchmarkReadEnv(b *testing.B) {
	for _, name := range []string{"nginx-scgi-request.bin", "nginx-scgi-request-post.bin", "nginx-scgi-request-dupheaders.bin"} {
		raw := readCapture(b, name)
		b.Run(strings.TrimSuffix(strings.TrimPrefix(name, "nginx-scgi-"), ".bin"), func(b *testing.B) {
			rd := bytes.NewReader(raw)
			br := bufio.NewReader(rd)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				if _, err := ReadEnv(br, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadRequest(b *testing.B) {
	for _, name := range []string{"nginx-scgi-request.bin", "nginx-scgi-request-post.bin", "nginx-scgi-request-dupheaders.bin"} {
		raw := readCapture(b, name)
		b.Run(strings.TrimSuffix(strings.TrimPrefix(name, "nginx-scgi-"), ".bin"), func(b *testing.B) {
			rd := bytes.NewReader(raw)
			br := bufio.NewReader(rd)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				if _, err := ReadRequest(br, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
