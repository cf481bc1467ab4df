package quixote

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/qxbridge/qxbridge/pickle"
)

// Errors returned by Session methods and Decode.
var (
	// ErrNotSession is returned (wrapped) by Decode for a pickle that is not a
	// session: another class of value, or an object without the attributes every
	// session has.
	ErrNotSession = errors.New("quixote: not a session")
	// ErrReserved is returned by Set and Delete for an attribute that has its own
	// accessor (id, user, _remote_address, _creation_time, _access_time,
	// _form_tokens, _csrf_token of Quixote sessions, _last_values of session4's,
	// data of DictSessions).
	ErrReserved = errors.New("quixote: attribute has its own accessor")
	// ErrNotDictSession is returned by the item methods of a session whose class is
	// not a DictSession.
	ErrNotDictSession = errors.New("quixote: not a DictSession")
	// ErrNoCSRFToken is returned by CSRFToken for a session whose class is not
	// Quixote's own Session or session4's, which alone have CSRF tokens.
	ErrNoCSRFToken = errors.New("quixote: session class has no CSRF token")
	// ErrValue is returned (wrapped) for a Go value that has no Python form (see
	// Session.Set), such as a channel or a function.
	ErrValue = errors.New("quixote: value cannot be pickled")
)

// The attributes every session has, in the order Session.__init__ assigns them.
const (
	attrID           = "id"
	attrUser         = "user"
	attrRemoteAddr   = "_remote_address"
	attrCreationTime = "_creation_time"
	attrAccessTime   = "_access_time"
	attrFormTokens   = "_form_tokens"
	attrCSRFToken    = "_csrf_token"  // KindQuixote, KindSession4
	attrData         = "data"         // KindDictSession
	attrLastValues   = "_last_values" // KindSession4
)

// FormTokenField is the form field Quixote's forms carry their form token in.
const FormTokenField = "_form_token"

// CSRFTokenField is the form field Quixote's valid_csrf_token reads by default.
const CSRFTokenField = "csrf_token"

// Session is a Quixote session: the pickled Python object, read and changed in
// place. Only what a method changes is changed; every other attribute, the class,
// and values Go has no type for are written back as they were loaded.
//
// A Session is not safe for concurrent use; like an *http.Request it belongs to the
// goroutine serving the request.
type Session struct {
	obj     *pickle.Object
	attrs   *pickle.Dict // obj's attribute dict
	class   Class
	expired bool
	renew   bool // RenewID was called
	// protocol is the pickle protocol of the file the session was decoded from (0
	// when unknown); Encode writes protocol 5 again for a protocol 5 file.
	protocol int
	// loaded is the state a KindSession4 session was decoded with (see session4.go).
	loaded []byte
}

// NewSession returns a session of class c as Python's Session.__init__(None) makes it at
// time now for a client at remoteAddr ("" is stored as None): id None, user None,
// creation and access time now as float seconds, no form tokens, plus _csrf_token
// None for KindQuixote and an empty data dict for KindDictSession, then what c.Init
// adds — the same attributes, in the same order and of the same types as a session
// CPython made.
func NewSession(c Class, remoteAddr string, now time.Time) *Session {
	obj := pickle.NewObject(c.Global())
	d := obj.Attrs()
	t := epochSeconds(now)
	var addr any
	if remoteAddr != "" {
		addr = remoteAddr
	}
	// Dict.Set fails only for unhashable keys; these keys are strings.
	_ = d.Set(attrID, nil)
	_ = d.Set(attrUser, nil)
	_ = d.Set(attrRemoteAddr, addr)
	_ = d.Set(attrCreationTime, t)
	_ = d.Set(attrAccessTime, t)
	_ = d.Set(attrFormTokens, pickle.NewList())
	s := &Session{obj: obj, attrs: d, class: c}
	switch c.Kind {
	case KindQuixote:
		_ = d.Set(attrCSRFToken, nil)
	case KindSession4:
		// Session4.__init__ runs Session.__init__, then sets _last_values to ''.
		_ = d.Set(attrCSRFToken, nil)
		_ = d.Set(attrLastValues, "")
		s.protocol = session4Protocol
	case KindDictSession:
		// DictSession.__init__ runs Session.__init__ first, then UserDict.__init__.
		_ = d.Set(attrData, pickle.NewDict())
	}
	if c.Init != nil {
		c.Init(s) // the subclass's __init__, after its base class's
	}
	return s
}

// FromObject returns the session held by a decoded pickle value, checking that it
// has the attributes every session has. classes describe application session
// classes (see Decode).
func FromObject(v any, classes ...Class) (*Session, error) {
	obj, ok := v.(*pickle.Object)
	if !ok {
		return nil, fmt.Errorf("%w: the pickle holds a %s", ErrNotSession, pickle.TypeName(v))
	}
	g, ok := obj.Class()
	if !ok {
		return nil, fmt.Errorf("%w: the pickled object names no class", ErrNotSession)
	}
	d := obj.Attrs()
	if d == nil {
		return nil, fmt.Errorf("%w: %s object has no attribute dict", ErrNotSession, g)
	}
	s := &Session{obj: obj, attrs: d, class: lookupClass(g, classes)}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %s object: %v", ErrNotSession, g, err)
	}
	s.remember()
	return s, nil
}

// check verifies the attributes and their types that session code relies on.
func (s *Session) check() error {
	id, ok := s.attrs.Get(attrID)
	if !ok {
		return errors.New("no id")
	}
	if _, isStr := id.(string); !isStr && id != nil {
		return fmt.Errorf("id is a %s", pickle.TypeName(id))
	}
	if _, ok := s.attrs.Get(attrUser); !ok {
		return errors.New("no user")
	}
	if a, ok := s.attrs.Get(attrRemoteAddr); !ok {
		return errors.New("no _remote_address")
	} else if _, isStr := a.(string); !isStr && a != nil {
		return fmt.Errorf("_remote_address is a %s", pickle.TypeName(a))
	}
	for _, name := range []string{attrCreationTime, attrAccessTime} {
		v, ok := s.attrs.Get(name)
		if !ok {
			return fmt.Errorf("no %s", name)
		}
		if _, ok := toSeconds(v); !ok {
			return fmt.Errorf("%s is a %s", name, pickle.TypeName(v))
		}
	}
	l, ok := s.attrs.Get(attrFormTokens)
	if !ok {
		return errors.New("no _form_tokens")
	}
	list, ok := l.(*pickle.List)
	if !ok {
		return fmt.Errorf("_form_tokens is a %s", pickle.TypeName(l))
	}
	for _, t := range list.Items {
		if _, ok := t.(string); !ok {
			return fmt.Errorf("_form_tokens holds a %s", pickle.TypeName(t))
		}
	}
	switch s.class.Kind {
	case KindQuixote, KindSession4:
		// A missing _csrf_token reads as None; a present one must be str or None.
		if c, ok := s.attrs.Get(attrCSRFToken); ok {
			if _, isStr := c.(string); !isStr && c != nil {
				return fmt.Errorf("_csrf_token is a %s", pickle.TypeName(c))
			}
		}
		if s.class.Kind == KindSession4 {
			return checkLastValues(s.attrs)
		}
	case KindDictSession:
		d, ok := s.attrs.Get(attrData)
		if !ok {
			return errors.New("DictSession has no data")
		}
		if _, ok := d.(*pickle.Dict); !ok {
			return fmt.Errorf("DictSession data is a %s", pickle.TypeName(d))
		}
	}
	return nil
}

// Object returns the pickled object itself, for what the typed accessors do not
// cover. Changes to it are saved like any other change.
func (s *Session) Object() *pickle.Object { return s.obj }

// Class returns the session's class as described to Decode or the manager (or as
// the pickle names it, with KindSession3, when nobody described it).
func (s *Session) Class() Class { return s.class }

// ID returns the session id, or "" for a new session that has no id yet (None in
// Python).
func (s *Session) ID() string {
	v, _ := s.attrs.Get(attrID)
	id, _ := v.(string)
	return id
}

func (s *Session) setID(id string) { _ = s.attrs.Set(attrID, id) }

// User returns the user attribute: any value of the pickle model, nil for None.
func (s *Session) User() any {
	v, _ := s.attrs.Get(attrUser)
	return v
}

// UserString returns the user when it is a str, as most applications store it.
func (s *Session) UserString() (string, bool) {
	v, ok := s.User().(string)
	return v, ok
}

// UserNameAttrs are the attributes UserName reads from a user that is an object
// (shop.auth.User, a Django-style user), in order.
var UserNameAttrs = []string{"login", "username", "user_name", "user_id", "id", "name"}

// UserName returns the name the session's user is known by outside the application:
// the one the gateway's admin commands match (sessions list, delete -user NAME) and
// the database stores keep in their user_name column, on the Go and Python sides
// alike. It is the user itself when that is a non-empty str; for an object, the first
// of its attributes UserNameAttrs that is a non-empty str or an int (in decimal);
// otherwise "" (no user, or one the rule cannot name: see gateway.Config.UserName to
// choose another rule).
func (s *Session) UserName() string {
	switch u := s.User().(type) {
	case string:
		return u
	case *pickle.Object:
		for _, name := range UserNameAttrs {
			switch v, _ := u.Attr(name); v := v.(type) {
			case string:
				if v != "" {
					return v
				}
			case int64:
				return strconv.FormatInt(v, 10)
			case *big.Int:
				return v.String()
			}
		}
	}
	return ""
}

// LoggedIn reports whether the user is true in Python's sense, which is session3's
// has_info rule.
func (s *Session) LoggedIn() bool { return Truthy(s.User()) }

// SetUser sets the user, as set_user does; nil logs out (None). A Go string is
// stored as a str; any other value as Set stores it.
func (s *Session) SetUser(v any) error {
	v, err := modelValue(v)
	if err != nil {
		return err
	}
	return s.attrs.Set(attrUser, v)
}

// RemoteAddress returns the client address the session was created for
// (_remote_address), "" when it is None.
func (s *Session) RemoteAddress() string {
	v, _ := s.attrs.Get(attrRemoteAddr)
	a, _ := v.(string)
	return a
}

// CreationTime returns when the session was created (_creation_time).
func (s *Session) CreationTime() time.Time { return s.timeAttr(attrCreationTime) }

// AccessTime returns when the session was last accessed (_access_time), at the
// one-second resolution the manager keeps it at.
func (s *Session) AccessTime() time.Time { return s.timeAttr(attrAccessTime) }

func (s *Session) timeAttr(name string) time.Time {
	t, _ := s.timeOf(name)
	return t
}

// timeOf returns a time attribute and whether the session has it as a number.
func (s *Session) timeOf(name string) (time.Time, bool) {
	v, ok := s.attrs.Get(name)
	if !ok {
		return time.Time{}, false
	}
	f, ok := toSeconds(v)
	return fromEpochSeconds(f), ok
}

// Touch records an access at now as session3's _set_access_time(1) does: the
// access time changes only when more than one second passed since the stored one,
// so a session read many times a second is not rewritten for it. It reports
// whether the access time changed.
func (s *Session) Touch(now time.Time) bool {
	v, _ := s.attrs.Get(attrAccessTime)
	last, _ := toSeconds(v)
	t := epochSeconds(now)
	if t-last > 1 {
		_ = s.attrs.Set(attrAccessTime, t)
		return true
	}
	return false
}

// HasInfo reports whether the session holds information worth keeping, by the
// class's has_info: a truthy user for session3's classes; user or form tokens or
// CSRF token for Quixote's own and session4's; the class's HasInfo when it has one.
func (s *Session) HasInfo() bool {
	if s.class.HasInfo != nil {
		return s.class.HasInfo(s)
	}
	if s.class.Kind.quixoteBased() {
		c, _ := s.attrs.Get(attrCSRFToken)
		return s.LoggedIn() || len(s.tokens().Items) > 0 || Truthy(c)
	}
	return s.LoggedIn()
}

// truthy is Python's bool(session): a DictSession is a UserDict, false when it has
// no keys; other sessions are always true. session3's manager tests it before
// has_info, so an empty DictSession is neither saved nor expired.
func (s *Session) truthy() bool {
	if s.class.Kind == KindDictSession {
		return s.data().Len() > 0
	}
	return true
}

// keep is session3's test at the end of a request: `if session and
// maintain_session(session)`, the first half of which is has_info.
func (s *Session) keep() bool { return s.truthy() && s.HasInfo() }

// Expire marks the session for expiry, as session3's expire_session does: at the
// end of the request the manager deletes its file and revokes the cookie, whatever
// happens to the session afterwards. The cookie can be revoked only while the
// response headers are not yet written.
func (s *Session) Expire() { s.expired = true }

// RenewID moves the session to a fresh id, as scs's RenewToken and Django's
// cycle_key do: call it when the user logs in or their privileges change, so that an
// id someone else planted or saw before (session fixation) is worth nothing
// afterwards. When the response headers are written, the Manager gives the session a
// new id and its cookie; at the end of the request it saves the session under the new
// id, then removes the old file, so Python pages load the new id and the old one
// names no session. Call it before the handler writes the response headers (a call
// after that is logged and the session keeps its id), on a page that is held back
// until the save: one within Manager.BufferLimit and not flushed. When the page
// starts going out before the handler returns (longer than BufferLimit, or flushed),
// the renewal is dropped and logged at error level and the session keeps its id: the
// new cookie would otherwise reach the browser before the session is saved under
// it. A login answered with a redirect or a short page is renewed. A session that is
// new in this request gets a fresh id anyway; one without info is not stored
// either way.
func (s *Session) RenewID() { s.renew = true }

// Expired reports whether Expire was called.
func (s *Session) Expired() bool { return s.expired }

// reserved reports whether name is an attribute with its own accessor.
func (s *Session) reserved(name string) bool {
	switch name {
	case attrID, attrUser, attrRemoteAddr, attrCreationTime, attrAccessTime, attrFormTokens:
		return true
	case attrCSRFToken:
		return s.class.Kind.quixoteBased()
	case attrLastValues:
		return s.class.Kind == KindSession4
	case attrData:
		return s.class.Kind == KindDictSession
	}
	return false
}

// Get returns an application attribute (counter, cart, ...). Reserved attributes
// (see ErrReserved) are read through their accessors and are not returned here.
func (s *Session) Get(name string) (any, bool) {
	if s.reserved(name) {
		return nil, false
	}
	return s.attrs.Get(name)
}

// GetString returns an attribute that is a str.
func (s *Session) GetString(name string) (string, bool) {
	v, ok := s.Get(name)
	str, isStr := v.(string)
	return str, ok && isStr
}

// GetInt returns an attribute that is an int small enough for an int64.
func (s *Session) GetInt(name string) (int64, bool) {
	v, ok := s.Get(name)
	i, isInt := v.(int64)
	return i, ok && isInt
}

// GetFloat returns an attribute that is a float.
func (s *Session) GetFloat(name string) (float64, bool) {
	v, ok := s.Get(name)
	f, isFloat := v.(float64)
	return f, ok && isFloat
}

// GetBool returns an attribute that is a bool.
func (s *Session) GetBool(name string) (bool, bool) {
	v, ok := s.Get(name)
	b, isBool := v.(bool)
	return b, ok && isBool
}

// Set sets an application attribute to v, replacing its value; a new one goes after
// the existing ones, as in a Python __dict__. Values of the pickle model are stored as
// they are, Go int, int32, float32 and the like as Python int and float, and any other
// Go value as pickle.MarshalValue converts it (time.Time as a datetime, slices as
// lists, maps as dicts, structs as objects or dicts). EncodeAttr instead writes a Go
// value into the objects the attribute already holds.
func (s *Session) Set(name string, v any) error {
	if s.reserved(name) {
		return fmt.Errorf("%w: %s", ErrReserved, name)
	}
	v, err := modelValue(v)
	if err != nil {
		return err
	}
	return s.attrs.Set(name, v)
}

// Delete removes an application attribute; removing one that is not there is not
// an error.
func (s *Session) Delete(name string) error {
	if s.reserved(name) {
		return fmt.Errorf("%w: %s", ErrReserved, name)
	}
	s.attrs.Delete(name)
	return nil
}

// Names returns the names of the application attributes in their order.
func (s *Session) Names() []string {
	var names []string
	for k := range s.attrs.All() {
		if name, ok := k.(string); ok && !s.reserved(name) {
			names = append(names, name)
		}
	}
	return names
}

// data returns a DictSession's data dict (an empty one for other kinds).
func (s *Session) data() *pickle.Dict {
	if s.class.Kind == KindDictSession {
		if v, ok := s.attrs.Get(attrData); ok {
			if d, ok := v.(*pickle.Dict); ok {
				return d
			}
		}
	}
	return pickle.NewDict()
}

// Data returns a DictSession's dict of keys (its UserDict data), which is
// distinct from its attributes; nil for other classes.
func (s *Session) Data() *pickle.Dict {
	if s.class.Kind != KindDictSession {
		return nil
	}
	return s.data()
}

// Item returns the value of a DictSession key (session[key] in Python).
func (s *Session) Item(key any) (any, bool) { return s.data().Get(key) }

// SetItem sets a DictSession key (session[key] = v in Python).
func (s *Session) SetItem(key, v any) error {
	if s.class.Kind != KindDictSession {
		return ErrNotDictSession
	}
	key, err := modelValue(key)
	if err != nil {
		return err
	}
	if v, err = modelValue(v); err != nil {
		return err
	}
	return s.data().Set(key, v)
}

// DeleteItem removes a DictSession key and reports whether it was there.
func (s *Session) DeleteItem(key any) bool {
	if s.class.Kind != KindDictSession {
		return false
	}
	return s.data().Delete(key)
}

// Keys returns the keys of a DictSession in order.
func (s *Session) Keys() []any { return s.data().Keys() }

// tokens returns the _form_tokens list (checked by Decode, made by New).
func (s *Session) tokens() *pickle.List {
	v, _ := s.attrs.Get(attrFormTokens)
	l, _ := v.(*pickle.List)
	if l == nil {
		return pickle.NewList()
	}
	return l
}

// FormTokens returns the outstanding form tokens, oldest first.
func (s *Session) FormTokens() []string {
	items := s.tokens().Items
	out := make([]string, 0, len(items))
	for _, t := range items {
		if str, ok := t.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// CreateFormToken adds a new form token (16 random bytes, 22 characters) and
// returns it, dropping the oldest beyond the class's MAX_FORM_TOKENS (32, or 16
// for Quixote's Session), as create_form_token does.
func (s *Session) CreateFormToken() string {
	tok := randToken(tokenBytes)
	l := s.tokens()
	l.Items = append(l.Items, tok)
	if extra := len(l.Items) - s.class.maxFormTokens(); extra > 0 {
		l.Items = slices.Delete(l.Items, 0, extra)
	}
	return tok
}

// HasFormToken reports whether tok is an outstanding form token.
func (s *Session) HasFormToken(tok string) bool {
	return slices.ContainsFunc(s.tokens().Items, func(v any) bool { return v == any(tok) })
}

// RemoveFormToken removes the first occurrence of tok from the outstanding form
// tokens and reports whether it was there (Python's remove_form_token raises
// ValueError instead).
func (s *Session) RemoveFormToken(tok string) bool {
	l := s.tokens()
	i := slices.IndexFunc(l.Items, func(v any) bool { return v == any(tok) })
	if i < 0 {
		return false
	}
	l.Items = slices.Delete(l.Items, i, i+1)
	return true
}

// CheckFormToken checks the form token a form submitted in its _form_token field
// (query or body, as r.FormValue reads them): when it is outstanding it is removed,
// so each token is accepted once, and CheckFormToken reports true.
func (s *Session) CheckFormToken(r *http.Request) bool {
	tok := r.FormValue(FormTokenField)
	return tok != "" && s.RemoveFormToken(tok)
}

// CSRFToken returns the session's CSRF token, creating it (16 random bytes) when
// it is None, as get_csrf_token does. Only Quixote's own Session class and
// session4's have one.
func (s *Session) CSRFToken() (string, error) {
	if !s.class.Kind.quixoteBased() {
		return "", ErrNoCSRFToken
	}
	if v, _ := s.attrs.Get(attrCSRFToken); v != nil {
		if t, ok := v.(string); ok {
			return t, nil
		}
	}
	t := randToken(tokenBytes)
	_ = s.attrs.Set(attrCSRFToken, t)
	return t, nil
}

// ValidCSRFToken reports whether a POST request carries the session's CSRF token
// in the form field named field (CSRFTokenField when ""), compared in constant
// time, as valid_csrf_token does.
func (s *Session) ValidCSRFToken(r *http.Request, field string) bool {
	if r.Method != http.MethodPost || !s.class.Kind.quixoteBased() {
		return false
	}
	if field == "" {
		field = CSRFTokenField
	}
	v := r.FormValue(field)
	if v == "" {
		return false
	}
	t, err := s.CSRFToken()
	return err == nil && subtle.ConstantTimeCompare([]byte(v), []byte(t)) == 1
}

// modelValue converts a Go value to the pickle model: values of the model as they
// are, Go numbers to int and float, anything else as pickle.MarshalValue converts it.
// It rejects what has no Python form.
func modelValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, *big.Int, float64, string, []byte,
		*pickle.ByteArray, *pickle.Tuple, *pickle.List, *pickle.Dict, *pickle.Set,
		*pickle.FrozenSet, pickle.Global, *pickle.Object:
		return v, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return uintValue(uint64(x)), nil
	case uint64:
		return uintValue(x), nil
	case float32:
		return float64(x), nil
	}
	// Any other Go value as EncodeAttr would write a new one (time.Time, slices,
	// maps, structs): one rule for what a session can hold.
	pv, err := pickle.MarshalValue(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrValue, v, err)
	}
	return pv, nil
}

func uintValue(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return new(big.Int).SetUint64(u)
}

// toSeconds reads a time attribute: a float as Python's time() returns, or an int.
func toSeconds(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// epochSeconds is t as Python's time.time() reports it: float seconds since the
// epoch (nanoseconds divided by 1e9).
func epochSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fromEpochSeconds(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<62/1e9 {
		return time.Time{}
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64(math.Round((f-sec)*1e9)))
}
