// Package quixote gives Go handlers the sessions of a Quixote application that
// keeps them with session3: the same session files, read and written the way
// session3's SessionManager and its Session classes do, so that a request served
// in Go and the next one served in Python carry on one session without noticing.
//
// # Sessions
//
// A Session is the pickled Python session object itself (a *pickle.Object),
// decoded with Decode and written back with Encode. Accessors read and change it
// in place, so only what a handler changes is changed: the class (module and
// name), attribute order, values Go has no type for (an application's own
// objects, Decimal, datetime, sets, shared references) are written back as they
// were loaded. Unchanged, a session3 file re-encodes to the same bytes.
//
// Every session has the attributes Session.__init__ assigns, in this order: id
// (str, None until first stored), user (any value; None when logged out),
// _remote_address, _creation_time and _access_time (float seconds since the epoch,
// as time.time() returns; time.Time in Go), _form_tokens (a list of str).
// Quixote's own quixote.session.Session adds _csrf_token; session3's DictSession
// adds data, the dict of its keys. These have their own accessors (ID, User,
// SetUser, RemoteAddress, CreationTime, AccessTime, FormTokens, CSRFToken, Item,
// SetItem, Keys) and are refused by Get/Set/Delete (ErrReserved), which handle the
// application's attributes (counter, cart, ...). A DictSession's keys are never
// mixed with its attributes: session["cart"] is Item("cart"), session.cart is
// Get("cart").
//
// DecodeAttr and EncodeAttr give the application's objects to Go as structs, as
// encoding/json does for JSON, with the mapping of pickle.UnmarshalValue and
// pickle.UpdateValue: s.DecodeAttr("user", &u) reads session.user (a
// shop.auth.User) into a Go struct whose fields name its attributes, and
// s.EncodeAttr("user", u) writes back only what Go changed, keeping the object's
// class and every attribute and shared reference the struct does not name.
// DecodeItem and EncodeItem do the same for a DictSession's keys.
//
// A Class names a session class and says how it behaves: its Kind (the built-in
// class it is or derives from: session3's Session, session3's DictSession, or
// Quixote's Session), and for an application subclass that overrides them, its
// has_info (Class.HasInfo) and MAX_FORM_TOKENS, and the attributes its __init__
// adds to new sessions (Class.Init). Classes nobody described behave
// like session3's Session. HasInfo follows each class: session3's Session has
// info when its user is true in Python's sense (Truthy: None, "", 0 and empty
// containers are false, objects true); Quixote's when its user, form tokens or
// CSRF token are true. Decode checks that a pickle is a session (an object with
// the attributes above, of the right types) and returns an error wrapping
// ErrNotSession otherwise.
//
// Quixote 4's session4 package is supported as KindSession4 (Session4Class,
// session4.Session4Session.Session4): a Quixote Session with 32 form tokens and
// _last_values, which its is_dirty compares. Its store writes protocol 5 pickles, so
// Encode writes protocol 5 for a session decoded from a protocol 5 file (and for new
// session4 sessions), protocol 4 otherwise, and sets _last_values before the save as
// session4's store does (see Encode), so that Python's manager neither misses a
// change Go made nor rewrites a session Go left clean.
//
// NewSession makes a session as Session.__init__(None) makes it: attributes in the same
// order, float times, None for an unknown address, an empty list of form tokens,
// _csrf_token None and an empty data dict where the class has them. CPython cannot
// tell it from one it made. Session ids are made as session3 makes them (NewID):
// 8 bytes from crypto/rand, URL-safe base64 without padding, 11 characters. Form
// and CSRF tokens are 16 random bytes (22 characters); a session keeps at most
// MAX_FORM_TOKENS form tokens (32; 16 for Quixote's class), dropping the oldest,
// and CheckFormToken accepts a form's _form_token field once.
//
// # The manager
//
// Manager.Handler wraps a handler in session3's SessionManager, and SessionFrom
// gives the handler the request's session. For each request:
//
//  1. The session cookie (Cookie.Name, default QX_session) names the session. ""
//     and "*del*" mean none. A value that is not a valid id (store.ValidID: 1 to 64
//     characters of [A-Za-z0-9_-]) is logged and does not count, so no hostile name
//     ever reaches the filesystem. The Cookie header is read with Quixote's own
//     cookie grammar (ParseCookies: commas separate cookies too, quoted values lose
//     their quotes and escapes, the last cookie of a name counts) as Shield forwards
//     it (without the invalid values), so a Go page, the gateway's ordering and a
//     Python page pick the same session for the same header (Cookie.SessionID). Shield keeps the values Quixote would misuse away from
//     Python, and defuses the headers its cookie parser would backtrack on for
//     seconds.
//  2. The session file is loaded and decoded. Without a cookie or a file, the
//     request gets a new session of class NewClass (session3's Session by default)
//     with id None, stored only if it ends the request with info.
//  3. The access time is refreshed as _set_access_time(1) does: only when more than
//     a second passed since the stored one.
//  4. When the handler writes the response headers (WriteHeader, the first Write,
//     a Flush), the cookie is decided: a new session with info gets its id
//     (regenerated while the store has a file of that name) and a Set-Cookie; a
//     stored session that lost its info, or on which Expire was called, has its
//     cookie revoked (value "" with max-age=0). Headers cannot change once sent, so
//     a new session that gets its info only after the handler started streaming
//     cannot get a cookie: it is not stored, and this is logged. A session that
//     loses its info after that point keeps its cookie but loses its file.
//  5. When the handler returns, a session with info is saved; one that lost its
//     info, or was expired, is deleted. A request that failed saves, deletes and
//     sets nothing: one whose handler panicked (the panic goes on to net/http after
//     the manager has released the session) or whose response status is 500 or
//     above. 4xx responses are successful requests: Quixote calls
//     finish_successful_request for the PublishError pages (403, 404, ...) too.
//     The response is held back (up to Manager.BufferLimit, 256 KiB by default)
//     until then, so that a save or delete that fails is answered 503 (the store is
//     unavailable: out of file descriptors, disk full, I/O error, lock timeout) or
//     500 in place of the page: a lost write is never answered as success. A longer
//     response, or one the handler flushes, goes out before the save; its failure is
//     still logged at error level and reported to Manager.Failed. A new session is
//     saved once before such a page's headers, which carry its cookie (so that the
//     browser's next request finds it), and again at the end if it changed; if that
//     first save fails, 503 or 500 replaces the page.
//
// Session.RenewID, called at login or a privilege change, moves the session to a
// fresh id (session fixation): new cookie, saved under the new id, old file removed;
// Python pages then load the new id. session3 has no such call. On a page that goes
// out before the save (longer than BufferLimit, or flushed) the renewal is dropped
// and logged: the session keeps its id.
//
// As in session3, a DictSession with no keys is false in Python, and session3 tests
// that before has_info: such a session is neither stored nor expired, whatever its
// user.
//
// Cookies are written as Quixote's HTTPResponse writes them, value quoted and
// attribute names in lower case, e.g. QX_session="KyPJ1fkwwK8"; path=/ — domain,
// path, max-age, secure, httponly in that order — plus samesite when
// Cookie.SameSite is set, which Quixote lacks. The path is Cookie.Path or else
// SCRIPT_NAME with a trailing slash; plain net/http has no SCRIPT_NAME, so
// Manager.ScriptName supplies it (a gateway passes the SCGI environment's), and
// without it the path is "/". Python's http.cookies and Quixote's request parser
// read these headers back (tested).
//
// # Differences from session3
//
// session3 rewrites the session file after every request whose session has info,
// changed or not. The manager compares the encoded session with the bytes it
// loaded and skips the save when they are equal. The access time still moves once
// a second while the session is in use, so sweeps by file modification time
// (session3's delete_old_sessions, store.Directory.DeleteIdle) still see the
// activity, within a second.
//
// session3 stops with an error when a session file does not unpickle (and loops
// forever on a zero-length one). The manager serves the request with a new
// anonymous session instead and logs the event (slog, once per request) when the
// file is incomplete, too large, not a regular file, not a pickle, holds something
// that is not a session, or names another session id than its file name. The file
// is left as it is for an operator: a new session that gets info gets a new id, so
// the bad file is never overwritten or deleted. A zero-length file, which a Python
// writer that crashed or met a full disk leaves (session3 truncates before it
// writes), is removed once it has stayed empty for the store's partial-write wait
// (store.Directory.RemoveEmpty), so that Python workers stop looping on it. A
// session that exists but cannot be read now — out of file descriptors, an I/O
// error, a file locked by a stuck peer beyond the store's lock timeout — gets 503
// (500 for a permission error), logged at error level, rather than a session that
// would look logged out.
//
// # Concurrency
//
// session3 does not order concurrent requests of one session: each loads the
// file, works on its own copy, and saves it whole, so the last save wins and
// changes made by the others are lost. Requests served in Go and in Python
// interleave the same way, and nothing in the file format can prevent it. Within
// one Go process, Manager.OneAtATime runs the requests of one session id one at a
// time (waiting as long as the request's context allows); it bounds the requests
// queued per session (beyond 64 a request gets 503) and keeps no state for
// sessions without requests in flight. A Session belongs to the goroutine serving
// its request and is not safe for concurrent use.
//
// A Manager with ReadOnly set serves the stored session to its handler but never
// saves, deletes or sets a cookie for it, whatever the handler changes: for running a
// handler beside the one that answers the request, as the gateway's shadow
// comparisons do over a store that returns a snapshot of the session.
package quixote
