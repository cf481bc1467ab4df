package quixote

import (
	"bytes"
	"fmt"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/pickle"
)

// session4 (Quixote 4's session package) keeps session3's file layout and locks but
// pickles with pickle.HIGHEST_PROTOCOL, and its Session4 class decides whether a
// session needs saving by itself: save_session calls preserve_current_values(),
// which stores in _last_values the repr of the session's vars() without
// _access_time and _last_values, and is_dirty() compares that repr with the current
// one. Quixote's BaseSessionManager saves a session it loaded only when is_dirty().
//
// Go's saves keep that logic right. A stale _last_values would be a lost update: if
// Go changed an attribute from A to B and left _last_values saying A, a Python
// request that set it back to A would find the session clean and not save it, and
// the file would keep B. So Encode does what save_session does: it sets _last_values
// to the repr CPython would compute, when every value is one whose repr Go rebuilds
// exactly (None, bool, int, float, str, bytes, bytearray, and lists, tuples and dicts
// of them). Otherwise (an object, a set, a Decimal...) it keeps the loaded
// _last_values when nothing but the access time changed, and else sets it to '',
// which no repr equals: Python then finds the session dirty and saves it once, with
// its own _last_values.

// session4Protocol is the pickle protocol session4's store writes
// (pickle.HIGHEST_PROTOCOL on CPython 3.8 and later).
const session4Protocol = 5

// idBytes is the number of random bytes in a new session id: 16 (22 characters)
// for session4, whose manager is Quixote's BaseSessionManager (randbytes(16)), else
// session3's 8.
func (k Kind) idBytes() int {
	if k == KindSession4 {
		return 16
	}
	return idBytes
}

// checkLastValues checks the _last_values of a session4 session: missing (the class
// attribute ” then applies) or a str.
func checkLastValues(attrs *pickle.Dict) error {
	if v, ok := attrs.Get(attrLastValues); ok {
		if _, isStr := v.(string); !isStr {
			return fmt.Errorf("_last_values is a %s", pickle.TypeName(v))
		}
	}
	return nil
}

// remember records the state a KindSession4 session was decoded with, so that
// Encode can tell whether anything but the access time changed.
func (s *Session) remember() {
	if s.class.Kind != KindSession4 {
		return
	}
	if b, err := pickle.Marshal(s.dirtyState()); err == nil {
		s.loaded = b
	}
}

// dirtyState is what is_dirty compares: the attributes without _access_time and
// _last_values, in their order.
func (s *Session) dirtyState() *pickle.Dict {
	d := pickle.NewDict()
	for k, v := range s.attrs.All() {
		if k == attrAccessTime || k == attrLastValues {
			continue
		}
		_ = d.Set(k, v) // keys come from a dict, so they are hashable
	}
	return d
}

// preserveLastValues sets _last_values before a save, as session4's save_session
// does with preserve_current_values() (see the comment at the top of this file).
func (s *Session) preserveLastValues() error {
	state := s.dirtyState()
	if r, ok := pytext.ExactRepr(state); ok {
		return s.attrs.Set(attrLastValues, r)
	}
	if _, has := s.attrs.Get(attrLastValues); has && s.loaded != nil {
		if b, err := pickle.Marshal(state); err == nil && bytes.Equal(b, s.loaded) {
			return nil
		}
	}
	return s.attrs.Set(attrLastValues, "")
}
