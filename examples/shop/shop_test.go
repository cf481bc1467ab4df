package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/scgi"
)

// TestShop runs the shop as a site does: nginx in front of the shop's gateway (this
// package, run with its command line), which serves /cart/ and /account/ in Go and
// forwards the rest to the Python shop on the real Quixote SCGI server; both share
// one session directory. A shopper logs in through Python, fills the cart in Go,
// checks out in Python, looks at the account in Go and logs out in Go. Each step is
// checked in the pages of both sides, and in the session file as CPython loads it
// with the shop's own classes.
func TestShop(t *testing.T) {
	sh := startShop(t)
	site, py, sessions := sh.site, sh.python, sh.sessions

	b := newBrowser(t) // one cookie jar for both: cookies do not depend on the port
	report := func() sessionReport { return readReport(t, sessions) }

	// Log in through Python.
	r := b.get(site + "/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "<p>Welcome.</p>")
	r = b.get(site + "/login?next=/cart/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = b.post(site+"/login", url.Values{"login": {"ann"}, "password": {"tea4two"}, "next": {"/cart/"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusFound, r.status, r.body)
	assert.Equal(t, site+"/cart/", r.location, "Quixote's redirect keeps the site's host and port")
	s := report()
	assert.Equal(t, "shop.session.ShopSession", s.Class)
	assert.Equal(t, shopSessionAttrs, s.Attrs, "made by Python")
	require.NotNil(t, s.User)
	assert.Equal(t, sessionUser{Class: "shop.auth.User", IsUser: true, Login: "ann", Name: "Ann Smith",
		Email: "ann@example.org", Since: "2021-03-14T09:26:53+00:00"}, *s.User)
	assert.Empty(t, s.Cart)

	// Something in the cart before /cart/ moved: Python's own CartItem.
	r = b.get(py + "/products")
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = b.post(py+"/cart/add", url.Values{"sku": {"mug"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusFound, r.status, r.body)
	before := report()
	require.Len(t, before.Cart, 1)

	// View the cart in Go: the same lines and total as the Python page.
	r = b.get(site + "/cart/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "Add to your cart", "Go's page")
	assert.Contains(t, r.body, "Ann Smith · <a href=\"/account/\">account</a>")
	assert.Equal(t, []string{`<tr class="item" data-sku="mug"><td>Stoneware mug</td><td>1</td><td>12.00</td><td>12.00</td></tr>`}, cartRows(r.body))
	assert.Equal(t, cartRows(b.get(py+"/cart/").body), cartRows(r.body))
	// Request records are written in batches, a little after the response.
	assert.Eventually(t, func() bool { return strings.Contains(sh.gatewayLog.String(), "path=/cart/ route=/cart/ status=200") },
		10*time.Second, time.Millisecond, "the gateway logged the Go page")

	// Add an item in Go (a new shop.models.CartItem), then one more mug (the
	// quantity of Python's object). The first form's token was made by Python.
	r = b.get(py + "/products")
	r = b.post(site+"/cart/add", url.Values{"sku": {"tea-oolong"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	assert.Equal(t, "/cart/", r.location)
	r = b.get(site + "/cart/")
	r = b.post(site+"/cart/add", url.Values{"sku": {"mug"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	r = b.post(site+"/cart/add", url.Values{"sku": {"mug"}, "_form_token": {"spent-or-forged"}})
	assert.Equal(t, http.StatusForbidden, r.status, "a form token is good once")
	// And one added and removed again in Go.
	r = b.get(site + "/cart/")
	r = b.post(site+"/cart/add", url.Values{"sku": {"tea-green"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	r = b.get(site + "/cart/")
	require.Len(t, cartRows(r.body), 3)
	assert.Len(t, readReport(t, sessions).Cart, 3)
	r = b.post(site+"/cart/remove", url.Values{"sku": {"tea-green"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)

	added := report()
	require.Len(t, added.Cart, 2)
	assert.Equal(t, cartItem{Class: "shop.models.CartItem", SKU: "mug", Name: "Stoneware mug", Price: "12.00",
		PriceClass: "decimal.Decimal", Qty: 2, Total: "24.00", AsPythonMakesIt: true}, added.Cart[0])
	assert.Equal(t, cartItem{Class: "shop.models.CartItem", SKU: "tea-oolong", Name: "Oolong, 100 g", Price: "7.25",
		PriceClass: "decimal.Decimal", Qty: 1, Total: "7.25", AsPythonMakesIt: true}, added.Cart[1])
	assert.Equal(t, "31.25", added.CartTotal, "ShopSession.cart_total() in CPython")
	assertUntouched(t, before, added, "cart", "_form_tokens", "_access_time")
	r = b.get(site + "/cart/")
	assert.Equal(t, cartRows(b.get(py+"/cart/").body), cartRows(r.body))
	assert.Contains(t, r.body, `<td id="total">31.25</td>`)

	// Check out in Python: it sees Go's item with its Decimal price.
	r = b.get(site + "/checkout")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, []string{
		`<tr class="item" data-sku="mug"><td>Stoneware mug</td><td>2</td><td>12.00</td><td>24.00</td></tr>`,
		`<tr class="item" data-sku="tea-oolong"><td>Oolong, 100 g</td><td>1</td><td>7.25</td><td>7.25</td></tr>`,
	}, cartRows(r.body))
	assert.Contains(t, r.body, `<td id="total">31.25</td>`)
	r = b.post(site+"/checkout", url.Values{"_form_token": {r.token(t)}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, `<p id="order">Order 1 placed: 31.25</p>`)
	ordered := report()
	assert.Empty(t, ordered.Cart)
	require.Len(t, ordered.Orders, 1)
	assert.Equal(t, "31.25", ordered.Orders[0].Total)
	assert.Equal(t, "decimal.Decimal", ordered.Orders[0].TotalClass)
	assert.Equal(t, added.Cart, ordered.Orders[0].Items)

	// The account in Go: the user and the order Python placed, as Python shows them.
	r = b.get(site + "/account/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, `<p id="since">Customer since March 2021</p>`)
	assert.Contains(t, r.body, `<input type="submit" value="Log out">`, "Go's page")
	assert.Equal(t, accountLines(b.get(py+"/account/").body), accountLines(r.body))
	assert.Len(t, accountLines(r.body), 4)
	viewed := report()
	assertUntouched(t, ordered, viewed, "_form_tokens", "_access_time")

	// Log out in Go: the session file is deleted and the cookie revoked, for both.
	r = b.post(site+"/account/logout", url.Values{"_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	assert.Equal(t, "/", r.location)
	assert.Contains(t, r.setCookie, "QX_session=")
	assert.Contains(t, strings.ToLower(r.setCookie), "max-age=0")
	assert.Empty(t, sessionFiles(t, sessions))
	r = b.get(site + "/")
	assert.Contains(t, r.body, "<p>Welcome.</p>")
	assert.Contains(t, r.body, `<a href="/login">log in</a>`)
	r = b.get(site + "/account/")
	assert.Equal(t, http.StatusSeeOther, r.status)
	assert.Equal(t, "/login?next=/account/", r.location)
	r = b.get(py + "/checkout")
	assert.Equal(t, http.StatusFound, r.status, "Python: nobody is logged in")

	assert.NotContains(t, sh.pythonOut.String(), "Traceback")
}

// TestShopVisitorCart: a visitor who has not logged in fills a cart in Go, so the
// session is made in Go. It is kept because the gateway knows ShopSession.has_info,
// it has the attributes ShopSession.__init__ gives a session made in Python, and
// Python lists the item, logs the visitor in and places the order on it.
func TestShopVisitorCart(t *testing.T) {
	sh := startShop(t)
	site, py, sessions := sh.site, sh.python, sh.sessions
	b := newBrowser(t)
	r := b.get(site + "/cart/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "Your cart is empty.")
	assert.Contains(t, r.setCookie, "QX_session=", "a session with a form token is kept, as ShopSession.has_info says")
	r = b.post(site+"/cart/add", url.Values{"sku": {"tea-green"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	s := readReport(t, sessions)
	assert.Equal(t, shopSessionAttrs, s.Attrs, "made by Go, with ShopSession.__init__'s attributes")
	assert.Nil(t, s.User)
	assert.True(t, s.HasInfo)
	assert.Equal(t, 0, s.FormTokens)
	require.Len(t, s.Cart, 1)
	assert.Equal(t, "4.50", s.Cart[0].Price)
	assert.Equal(t, []string{`<tr class="item" data-sku="tea-green"><td>Green tea, 100 g</td><td>1</td><td>4.50</td><td>4.50</td></tr>`},
		cartRows(b.get(py+"/cart/").body))

	// Python's checkout asks for a login, and then places the order on the
	// session Go made.
	r = b.get(site + "/checkout")
	assert.Equal(t, http.StatusFound, r.status, r.body)
	assert.Equal(t, site+"/login?next=/checkout", r.location)
	r = b.get(r.location)
	r = b.post(site+"/login", url.Values{"login": {"bob"}, "password": {"mugs"}, "next": {"/checkout"}, "_form_token": {r.token(t)}})
	require.Equal(t, http.StatusFound, r.status, r.body)
	r = b.get(site + "/checkout")
	r = b.post(site+"/checkout", url.Values{"_form_token": {r.token(t)}})
	assert.Contains(t, r.body, `<p id="order">Order 1 placed: 4.50</p>`)
	s = readReport(t, sessions)
	assert.Equal(t, "bob", s.User.Login)
	require.Len(t, s.Orders, 1)
	assert.Equal(t, "4.50", s.Orders[0].Total)
	assert.NotContains(t, sh.pythonOut.String(), "Traceback")
}

// shopSessionAttrs are the attributes of a new ShopSession, in order: session3's
// Session.__init__'s, then ShopSession.__init__'s.
var shopSessionAttrs = []string{"id", "user", "_remote_address", "_creation_time", "_access_time", "_form_tokens", "cart", "orders"}

// shopSite is a running site: nginx, the gateway and the Python workers on one session
// directory.
type shopSite struct {
	site       string // the site's URL, through nginx
	python     string // the Python shop's URL, straight to its workers
	sessions   string // the session directory
	gatewayLog *output
	pythonOut  *output
}

// startShop starts the site as README.md runs it: the Python workers, the gateway
// on a UNIX socket with /cart/ and /account/ served in Go and every other path
// forwarded, and nginx in front. The Python workers are also served straight
// (through an SCGI proxy), as the shop was before /cart/ and /account/ moved: its
// pages are what Go's must show.
func startShop(t *testing.T) *shopSite {
	t.Helper()
	s := &shopSite{sessions: t.TempDir()}
	pyAddr, pyOut := startPython(t, s.sessions)
	sockDir, err := os.MkdirTemp("", "shop") // short: a socket path is limited to 107 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "gateway.sock")
	s.gatewayLog = startGateway(t, "-scgi", "unix:"+sock, "-sessions", s.sessions,
		"-route", "/cart/=cart", "-route", "/account/=account", "-route", "/=scgi://"+pyAddr)
	s.site, s.pythonOut = startNginx(t, sock), pyOut
	direct, err := scgi.NewProxy(pyAddr)
	require.NoError(t, err)
	srv := httptest.NewServer(direct)
	t.Cleanup(srv.Close)
	s.python = srv.URL
	return s
}

// --- a browser ---

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // the test follows, and checks, each redirect
	}}}
}

type response struct {
	status              int
	location, setCookie string
	body                string
}

var tokenRE = regexp.MustCompile(`name="_form_token" value="([^"]+)"`)

// token is the form token of the page's (first) form.
func (r response) token(t *testing.T) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(r.body)
	require.NotNil(t, m, "no form token in:\n%s", r.body)
	return m[1]
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return response{status: resp.StatusCode, location: resp.Header.Get("Location"),
		setCookie: strings.Join(resp.Header.Values("Set-Cookie"), "\n"), body: string(body)}
}

func (b *browser) get(u string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	cartRowRE     = regexp.MustCompile(`<tr class="item".*?</tr>|<td id="total">.*?</td>`)
	accountLineRE = regexp.MustCompile(`<p id="(?:name|email|since)">.*?</p>|<li>Order .*?</li>`)
)

// cartRows are the item rows of a cart table (Go's page or Python's) and its total.
func cartRows(page string) []string {
	rows := cartRowRE.FindAllString(page, -1)
	if n := len(rows); n > 0 && strings.HasPrefix(rows[n-1], `<td id="total">`) {
		rows = rows[:n-1]
	}
	return rows
}

// accountLines are the user's details and orders on an account page.
func accountLines(page string) []string { return accountLineRE.FindAllString(page, -1) }

// --- the session file as CPython sees it ---

type sessionReport struct {
	Class      string            `json:"class"`
	ID         string            `json:"id"`
	HasInfo    bool              `json:"has_info"`
	User       *sessionUser      `json:"user"`
	Cart       []cartItem        `json:"cart"`
	CartTotal  string            `json:"cart_total"`
	Orders     []order           `json:"orders"`
	FormTokens int               `json:"form_tokens"`
	Attrs      []string          `json:"attrs"`
	Pickled    map[string]string `json:"pickled"`
}

type sessionUser struct {
	Class  string `json:"class"`
	IsUser bool   `json:"is_user"`
	Login  string `json:"login"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Since  string `json:"since"`
}

type cartItem struct {
	Class           string `json:"class"`
	SKU             string `json:"sku"`
	Name            string `json:"name"`
	Price           string `json:"price"`
	PriceClass      string `json:"price_class"`
	Qty             int    `json:"qty"`
	Total           string `json:"total"`
	AsPythonMakesIt bool   `json:"as_python_makes_it"`
}

type order struct {
	Class      string     `json:"class"`
	IsOrder    bool       `json:"is_order"`
	Number     int        `json:"number"`
	Total      string     `json:"total"`
	TotalClass string     `json:"total_class"`
	Placed     string     `json:"placed"`
	Items      []cartItem `json:"items"`
}

func sessionFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// readReport loads the one session file in dir with CPython and the shop's classes
// (testdata/session_report.py).
func readReport(t *testing.T, dir string) sessionReport {
	t.Helper()
	files := sessionFiles(t, dir)
	require.Len(t, files, 1, "one session file")
	app, err := filepath.Abs("python")
	require.NoError(t, err)
	cmd := exec.Command(python(t), filepath.Join("testdata", "session_report.py"), filepath.Join(dir, files[0]))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+app, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "session_report.py: %s", stderr)
	var r sessionReport
	require.NoError(t, json.Unmarshal(out, &r))
	assert.Equal(t, files[0], r.ID, "the file is named by the session's id")
	return r
}

// assertUntouched checks that every attribute of the session but the named ones
// pickles to the same bytes in after as in before, and that none was added or lost.
func assertUntouched(t *testing.T, before, after sessionReport, changed ...string) {
	t.Helper()
	assert.Equal(t, before.Attrs, after.Attrs, "the same attributes, in the same order")
	for name, p := range before.Pickled {
		if !contains(changed, name) {
			assert.Equal(t, p, after.Pickled[name], "attribute %s changed", name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
