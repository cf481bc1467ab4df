package demo

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testhttp"
	"github.com/qxbridge/qxbridge/internal/testpeer"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testpeer.RemoveBuilds()
	os.Exit(code)
}

// tourCommands returns the tour's commands from README.md: the pip install line, the
// Python side's command, and the gateway's command with the Python route, each split
// into words.
func tourCommands(t *testing.T) (pip, python, gateway []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "README.md"))
	require.NoError(t, err)
	for _, m := range regexp.MustCompile("(?s)```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		for _, line := range strings.Split(m[1], "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.Contains(line, "python3 -m qxdemo"):
				require.Nil(t, python, "README.md shows one command for the Python side")
				python = strings.Fields(line)
			case strings.HasPrefix(line, "pip install ") && strings.Contains(line, "quixote"):
				require.Nil(t, pip, "README.md shows one pip install of Quixote")
				pip = strings.Fields(line)
			case strings.HasPrefix(line, "go run ./cmd/scgi-gateway -route /=demo "):
				require.Nil(t, gateway, "README.md shows one gateway command with the demo's routes")
				gateway = strings.Fields(line)[3:]
			}
		}
	}
	require.NotNil(t, pip, "README.md's tour installs Quixote")
	require.NotNil(t, python, "README.md's tour runs the Python side")
	require.NotNil(t, gateway, "README.md's tour runs the gateway with the Python route")
	return pip, python, gateway
}

// listenerFile returns a listening loopback socket as a file to pass as descriptor 3,
// and its address.
func listenerFile(t *testing.T) (*os.File, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := l.(*net.TCPListener).File()
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // f holds the socket
	t.Cleanup(func() { f.Close() })
	return f, addr
}

// startProcess runs cmd with a listening socket as descriptor 3 (systemd's socket
// passing: no port can be taken between choosing it and the program binding it),
// in its own process group, killed when the test ends.
func startProcess(t *testing.T, name string, cmd *exec.Cmd, listener *os.File) *testpeer.Output {
	t.Helper()
	out := &testpeer.Output{}
	cmd.ExtraFiles = []*os.File{listener}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // python-scgi's children
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return out
}

// startGateway runs the gateway binary with args in dir (where ./sessions is), on a
// passed HTTP socket, and returns its URL once it answers.
func startGateway(t *testing.T, dir string, args ...string) string {
	t.Helper()
	f, addr := listenerFile(t)
	cmd := exec.Command(testpeer.Build(t, "./cmd/scgi-gateway"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	out := startProcess(t, "gateway", cmd, f)
	u := "http://" + addr
	waitFor(t, u+"/style.css", http.StatusOK, out)
	return u
}

// startPython runs README.md's command for the Python side in dir, with the
// interpreter the tests use and a passed socket instead of port 4000, and returns its
// address.
func startPython(t *testing.T, dir string, command []string) string {
	t.Helper()
	py := testpeer.Python(t)
	require.Equal(t, []string{"PYTHONPATH=demo/python", "python3", "-m", "qxdemo"}, command[:4])
	f, addr := listenerFile(t)
	// LISTEN_PID must be the server's own pid: the shell's, which exec keeps.
	args := append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, py}, command[2:]...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(testpeer.RepoRoot(), "demo", "python"),
		"PYTHONDONTWRITEBYTECODE=1", "LISTEN_FDS=1")
	startProcess(t, "python3 -m qxdemo", cmd, f)
	return addr
}

// waitFor polls u until it answers status.
func waitFor(t *testing.T, u string, status int, out *testpeer.Output) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		require.Less(t, time.Since(start), 30*time.Second, "%s does not answer %d (%v):\n%s", u, status, err, out)
	}
}

var idText = regexp.MustCompile(`id="([a-z-]+)">([^<]*)<`)

// shown returns the texts of the elements with an id on a page of the demo: who
// served it ("served-by") and what the session holds ("session-user", ...).
func shown(body string) map[string]string {
	m := map[string]string{}
	for _, sm := range idText.FindAllStringSubmatch(body, -1) {
		m[sm[1]] = sm[2]
	}
	return m
}

// TestDemoTour follows README.md's tour with its own commands: the gateway alone,
// then the real Quixote worker running the demo's Python side beside the gateway
// started with the Python route, one login shared by the two sides, and what headless
// Chromium renders of it.
func TestDemoTour(t *testing.T) {
	pip, pyCommand, gwArgs := tourCommands(t)
	t.Run("pip install pins", func(t *testing.T) {
		req, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "testdata", "py", "requirements.txt"))
		require.NoError(t, err)
		for _, pin := range pip[2:] {
			assert.Regexp(t, "(?m)^"+regexp.QuoteMeta(pin)+"$", string(req), "README's pip install pins what the tests run")
		}
		assert.Len(t, pip, 5, "quixote, session3 and scgi")
	})

	t.Run("gateway alone", func(t *testing.T) {
		dir := t.TempDir()
		u := startGateway(t, dir) // go run ./cmd/scgi-gateway, no flags
		c := testhttp.Client(t)
		r := testhttp.Get(t, c, u+"/")
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, "Go", shown(r.Body)["served-by"])
		assert.Contains(t, r.Body, "Not logged in.")
		r = testhttp.Get(t, c, u+"/login?name=ann")
		assert.Equal(t, "ann", shown(r.Body)["session-user"])
		r = testhttp.Get(t, c, u+"/py/counter")
		assert.Equal(t, http.StatusBadGateway, r.Status)
		assert.Contains(t, r.Body, "The Python side is not running")
		assert.Contains(t, r.Body, `href="../style.css"`)
		assert.Equal(t, "ann", shown(r.Body)["session-user"], "the Go side still shows the session")
		assert.Len(t, testhttp.SessionFiles(t, filepath.Join(dir, "sessions")), 1)
	})

	dir := t.TempDir()
	pyAddr := startPython(t, dir, pyCommand)
	cmd := exec.Command(testpeer.Python(t), "-m", "qxdemo", "--help")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(testpeer.RepoRoot(), "demo", "python"))
	help, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", help)
	require.Contains(t, string(help), "(default 4000)", "the port README's route names")
	require.Contains(t, gwArgs, "/py/=scgi://127.0.0.1:4000")
	for i, a := range gwArgs {
		gwArgs[i] = strings.Replace(a, "scgi://127.0.0.1:4000", "scgi://"+pyAddr, 1)
	}
	u := startGateway(t, dir, gwArgs...)
	waitFor(t, u+"/py/", http.StatusOK, &testpeer.Output{})
	sessions := filepath.Join(dir, "sessions")

	c := testhttp.Client(t)
	t.Run("one login", func(t *testing.T) {
		r := testhttp.Get(t, c, u+"/py/")
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		assert.Equal(t, "Python", shown(r.Body)["served-by"])
		assert.Equal(t, "nobody (not logged in)", shown(r.Body)["session-user"])

		// Log in with Python ...
		r = testhttp.Do(t, c, http.MethodPost, u+"/py/login", "name=ann")
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		assert.Contains(t, r.Body, "Welcome! ann")
		require.Len(t, r.Cookies, 1)
		assert.Regexp(t, `^QX_session="[A-Za-z0-9_-]{11}"; path=/$`, r.Cookies[0], "Quixote's cookie, for the whole site")
		files := testhttp.SessionFiles(t, sessions)
		require.Len(t, files, 1)
		id := files[0]

		// ... Go knows the user, and counts.
		r = testhttp.Get(t, c, u+"/")
		assert.Equal(t, map[string]string{"served-by": "Go", "session-user": "ann", "session-counter": "0",
			"session-id": id, "session-tokens": "0", "session-class": "session3.Session.Session"}, shown(r.Body))
		assert.Contains(t, r.Body, "<p>Hello, ann!</p>")
		r = testhttp.Get(t, c, u+"/counter")
		assert.Contains(t, r.Body, "<p>Counter: 1</p>")
		assert.Equal(t, "Go", shown(r.Body)["served-by"])

		// Python counts on from Go's count, and sees Go's form token.
		testhttp.Get(t, c, u+"/create_token")
		r = testhttp.Get(t, c, u+"/py/counter")
		assert.Contains(t, r.Body, "<p>Counter: 2</p>")
		assert.Equal(t, map[string]string{"served-by": "Python", "session-user": "ann", "session-counter": "2",
			"session-id": id, "session-tokens": "1", "session-class": "session3.Session.Session"}, shown(r.Body))
		n, _ := testhttp.ReadSession(t, sessions, id).GetInt("counter")
		assert.Equal(t, int64(2), n)

		// A login in Go is Python's too; a logout in Python is Go's.
		testhttp.Get(t, c, u+"/login?name=bob")
		r = testhttp.Get(t, c, u+"/py/")
		assert.Contains(t, r.Body, "Hello from Python, bob!")
		assert.Equal(t, "0", shown(r.Body)["session-counter"])
		r = testhttp.Get(t, c, u+"/py/logout")
		assert.Contains(t, r.Body, "Goodbye!")
		assert.Equal(t, "nobody (not logged in)", shown(r.Body)["session-user"])
		assert.Empty(t, testhttp.SessionFiles(t, sessions))
		r = testhttp.Get(t, c, u+"/")
		assert.Contains(t, r.Body, "Not logged in.")

		// The one stylesheet, served by the gateway, linked from both sides.
		r = testhttp.Get(t, c, u+"/style.css")
		assert.Equal(t, "text/css; charset=utf-8", r.Header.Get("Content-Type"))
		assert.Contains(t, testhttp.Get(t, c, u+"/py/").Body, `<link rel="stylesheet" href="../style.css">`)
		assert.Contains(t, testhttp.Get(t, c, u+"/").Body, `<link rel="stylesheet" href="style.css">`)
	})

	t.Run("links", func(t *testing.T) {
		// Every page of both sides links the same pages, which all answer.
		links := func(page string) []string {
			t.Helper()
			base, err := url.Parse(u + page)
			require.NoError(t, err)
			nav := testhttp.Get(t, testhttp.Client(t), base.String()).Body
			_, nav, _ = strings.Cut(nav, "<nav>")
			var out []string
			for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(nav, -1) {
				ref, err := url.Parse(m[1])
				require.NoError(t, err)
				out = append(out, base.ResolveReference(ref).String())
			}
			return out
		}
		all := links("/")
		assert.Len(t, all, 12)
		for _, page := range []string{"/counter", "/py/", "/py/counter", "/py/login"} {
			assert.Equal(t, all, links(page), page)
		}
		c := testhttp.Client(t)
		for _, l := range all {
			assert.Equal(t, http.StatusOK, testhttp.Get(t, c, l).Status, l)
		}
	})

	t.Run("chromium", func(t *testing.T) {
		chromium, err := exec.LookPath("chromium")
		if err != nil {
			testpeer.Missing(t, "chromium (Debian's chromium package)")
		}
		// Log in with Python, count twice in Go and once in Python.
		c := testhttp.Client(t)
		testhttp.Get(t, c, u+"/py/login?name=ann")
		testhttp.Get(t, c, u+"/counter")
		testhttp.Get(t, c, u+"/counter")
		testhttp.Get(t, c, u+"/py/counter")
		gw, err := url.Parse(u)
		require.NoError(t, err)
		var cookie string
		for _, ck := range c.Jar.Cookies(gw) {
			cookie = ck.Name + "=" + ck.Value
		}
		require.NotEmpty(t, cookie)
		// The browser gets the visitor's cookie from a proxy in front of the
		// gateway: headless Chromium has no flag for a cookie.
		proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(gw)
			r.Out.Header.Set("Cookie", cookie)
		}}
		front := httptest.NewServer(proxy)
		defer front.Close()

		for _, p := range []struct {
			path, side string
			header     [3]uint8 // the banner's colour, from the stylesheet
		}{
			{"/", "Go", [3]uint8{0x00, 0x7d, 0x9c}},
			{"/py/", "Python", [3]uint8{0x30, 0x69, 0x98}},
		} {
			t.Run(p.side, func(t *testing.T) {
				// QXBRIDGE_SCREENSHOTS=DIR keeps the screenshots, to look at.
				shot := filepath.Join(t.TempDir(), "page.png")
				if keep := os.Getenv("QXBRIDGE_SCREENSHOTS"); keep != "" {
					shot = filepath.Join(keep, "demo-"+strings.ToLower(p.side)+".png")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
					"--hide-scrollbars", "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
					"--window-size=1100,800", "--screenshot="+shot, "--dump-dom", front.URL+p.path)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
				dom := shown(stdout.String())
				assert.Equal(t, p.side, dom["served-by"], "the page says who served it")
				assert.Equal(t, "ann", dom["session-user"])
				assert.Equal(t, "3", dom["session-counter"], "two counts in Go, one in Python")

				f, err := os.Open(shot)
				require.NoError(t, err)
				defer f.Close()
				img, err := png.Decode(f)
				require.NoError(t, err)
				assert.Equal(t, image.Pt(1100, 800), img.Bounds().Size())
				colours := map[[3]uint32]bool{}
				for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 3 {
					for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
						r, g, b, _ := img.At(x, y).RGBA()
						colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
					}
				}
				assert.Greater(t, len(colours), 20, "a styled page, not black text on white")
				r, g, b, _ := img.At(5, 5).RGBA()
				assert.Equal(t, p.header, [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)},
					"the banner has the %s side's colour: the stylesheet was loaded", p.side)
			})
		}
	})
}
