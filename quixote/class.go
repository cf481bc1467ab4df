package quixote

import (
	"github.com/qxbridge/qxbridge/pickle"
)

// Kind says which of the Python session classes a session behaves like: it decides
// the has_info rule, the form token limit and the attributes a new session starts
// with.
type Kind uint8

const (
	// KindSession3 is session3.Session.Session: has_info is a truthy user, up to 32
	// form tokens.
	KindSession3 Kind = iota
	// KindDictSession is session3.DictSession.DictSession, a UserDict and a Session:
	// like KindSession3, plus a "data" dict of keys, and a session with no keys is
	// false in Python, so session3's manager neither saves nor expires it.
	KindDictSession
	// KindQuixote is Quixote's own quixote.session.Session: it also has _csrf_token,
	// keeps up to 16 form tokens, and has_info is user or form tokens or CSRF token.
	KindQuixote
	// KindSession4 is session4.Session4Session.Session4, Quixote 4's session class
	// from the session4 package: a Quixote Session (has_info, _csrf_token) with up to
	// 32 form tokens and a _last_values attribute, the repr of the attributes at the
	// last save, that its is_dirty compares (see Session.Encode). Its store writes
	// protocol 5 pickles.
	KindSession4
)

// String returns the kind's name: session3, dictsession, quixote or session4, the
// names the gateway's -session-kind flag and configuration file take (which also take
// dict for dictsession).
func (k Kind) String() string {
	switch k {
	case KindSession3:
		return "session3"
	case KindDictSession:
		return "dictsession"
	case KindQuixote:
		return "quixote"
	case KindSession4:
		return "session4"
	}
	return "Kind(?)"
}

// maxFormTokens is the class attribute MAX_FORM_TOKENS of each built-in class.
func (k Kind) maxFormTokens() int {
	if k == KindQuixote {
		return 16
	}
	return 32
}

// quixoteBased reports whether the kind's class derives from quixote.session.Session,
// which has _csrf_token and judges has_info by user, form tokens and CSRF token.
func (k Kind) quixoteBased() bool { return k == KindQuixote || k == KindSession4 }

// Class names a Python session class (the module and name its pickles carry) and
// says how Go treats sessions of it. An application's own subclass is described by
// its module and name, the Kind of the built-in class it derives from, and, when it
// overrides has_info or MAX_FORM_TOKENS or sets attributes in __init__, their Go
// equivalents.
type Class struct {
	Module string // e.g. "session3.Session"
	Name   string // e.g. "Session"
	Kind   Kind
	// HasInfo replaces the Kind's has_info rule, for a subclass that overrides
	// has_info. nil means the Kind's rule.
	HasInfo func(*Session) bool
	// MaxFormTokens replaces the Kind's MAX_FORM_TOKENS (32, or 16 for KindQuixote)
	// when positive.
	MaxFormTokens int
	// Init, for a subclass whose __init__ sets attributes of its own, sets them on
	// a session NewSession makes, after the base class's, so that a session made
	// in Go has what Python code expects of one made in Python:
	//
	//	Init: func(s *quixote.Session) { _ = s.EncodeAttr("cart", []CartItem{}) }
	//
	// nil adds nothing.
	Init func(*Session)
}

// The built-in session classes.
var (
	// Session3Class is session3.Session.Session, the default class of new sessions.
	Session3Class = Class{Module: "session3.Session", Name: "Session", Kind: KindSession3}
	// DictSessionClass is session3.DictSession.DictSession.
	DictSessionClass = Class{Module: "session3.DictSession", Name: "DictSession", Kind: KindDictSession}
	// QuixoteClass is Quixote's own quixote.session.Session.
	QuixoteClass = Class{Module: "quixote.session", Name: "Session", Kind: KindQuixote}
	// Session4Class is session4.Session4Session.Session4 (Quixote 4's session4 package).
	Session4Class = Class{Module: "session4.Session4Session", Name: "Session4", Kind: KindSession4}
)

// Global returns the class as the pickle names it.
func (c Class) Global() pickle.Global { return pickle.Global{Module: c.Module, Name: c.Name} }

// String returns the dotted name, e.g. "session3.Session.Session".
func (c Class) String() string { return c.Module + "." + c.Name }

func (c Class) maxFormTokens() int {
	if c.MaxFormTokens > 0 {
		return c.MaxFormTokens
	}
	return c.Kind.maxFormTokens()
}

// lookupClass finds the Class for a pickled class name: first among the given
// classes, then the built-in ones. A class nobody described is treated like
// session3's Session (KindSession3), the base of application sessions.
func lookupClass(g pickle.Global, classes []Class) Class {
	for _, c := range classes {
		if c.Module == g.Module && c.Name == g.Name {
			return c
		}
	}
	for _, c := range []Class{Session3Class, DictSessionClass, QuixoteClass, Session4Class} {
		if c.Module == g.Module && c.Name == g.Name {
			return c
		}
	}
	return Class{Module: g.Module, Name: g.Name, Kind: KindSession3}
}
