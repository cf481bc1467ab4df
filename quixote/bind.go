package quixote

import (
	"errors"
	"fmt"

	"github.com/qxbridge/qxbridge/pickle"
)

// ErrNoAttribute is returned (wrapped) by DecodeAttr for an attribute the session does
// not have.
var ErrNoAttribute = errors.New("quixote: session has no such attribute")

// DecodeAttr stores the session attribute name — an application attribute, or "user"
// when the user is an application object — in the Go value dst points to, as
// pickle.UnmarshalValue does: struct fields name the Python attributes, and the
// pickle package doc lists how Python types map to Go's. A type that does not fit
// is a *pickle.MappingError whose path starts at the session:
//
//	pickle: session.cart[2].price: Python decimal.Decimal into Go int
func (s *Session) DecodeAttr(name string, dst any) error {
	v, ok := s.attrs.Get(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoAttribute, name)
	}
	return sessionPath(name, pickle.UnmarshalValue(v, dst))
}

// EncodeAttr writes the Go value src into the session attribute name, as
// pickle.UpdateValue does: into the objects and containers the attribute holds,
// changing only what src changed, so that Python loads the session it would have
// had its own code made the same change; a new attribute goes last. "user" is set
// as SetUser sets it; the other attributes with accessors are ErrReserved. On error
// the session is unchanged.
func (s *Session) EncodeAttr(name string, src any) error {
	if name != attrUser && s.reserved(name) {
		return fmt.Errorf("%w: %s", ErrReserved, name)
	}
	old, ok := s.attrs.Get(name)
	var v any
	var err error
	if ok {
		v, err = pickle.UpdateValue(old, src)
	} else {
		v, err = pickle.MarshalValue(src)
	}
	if err != nil {
		return sessionPath(name, err)
	}
	return s.attrs.Set(name, v)
}

// sessionPath makes the path of a mapping error start at the session attribute.
func sessionPath(name string, err error) error {
	var me *pickle.MappingError
	if errors.As(err, &me) {
		return &pickle.MappingError{Path: "session." + name + me.Path, Msg: me.Msg}
	}
	return err
}
