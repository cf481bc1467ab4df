package quixote

import (
	"crypto/rand"
	"encoding/base64"
)

// randToken returns n bytes from crypto/rand as URL-safe base64 without padding:
// what Quixote's randbytes(n) (secrets.token_urlsafe) returns. 8 bytes make the
// 11-character session ids of session3; 16 bytes make the 22-character form and
// CSRF tokens.
func randToken(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it aborts the program when the
	// system's random source fails), so there is nothing to handle here.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

const (
	idBytes    = 8  // session3's SessionManager: randbytes(8)
	tokenBytes = 16 // Session.create_form_token and get_csrf_token: randbytes(16)
)

// NewID returns a fresh session id as session3 makes them: 8 random bytes from
// crypto/rand, URL-safe base64 without padding (11 characters of [A-Za-z0-9_-]).
// The manager regenerates it while the store already has a file of that name.
func NewID() string { return randToken(idBytes) }
