package quixote

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/qxbridge/qxbridge/pickle"
)

// ErrNoAttribute is returned (wrapped) by DecodeAttr for an attribute, and by
// DecodeItem for a key, that the session does not have.
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
	if err := encodeInto(s.attrs, name, src); err != nil {
		return sessionPath(name, err)
	}
	return nil
}

// encodeInto writes src into d[key]: into the value there, or as a new key.
func encodeInto(d *pickle.Dict, key, src any) error {
	old, ok := d.Get(key)
	var v any
	var err error
	if ok {
		v, err = pickle.UpdateValue(old, src)
	} else {
		v, err = pickle.MarshalValue(src)
	}
	if err != nil {
		return err
	}
	return d.Set(key, v)
}

// DecodeItem is DecodeAttr for a DictSession key: it stores session[key] in the Go
// value dst points to.
func (s *Session) DecodeItem(key, dst any) error {
	k, err := modelValue(key)
	if err != nil {
		return err
	}
	v, ok := s.data().Get(k)
	if !ok {
		return fmt.Errorf("%w: session[%v]", ErrNoAttribute, itemRepr(k))
	}
	return itemPath(k, pickle.UnmarshalValue(v, dst))
}

// EncodeItem is EncodeAttr for a DictSession key: it writes src into session[key]
// (a new key goes last). On error the session is unchanged.
func (s *Session) EncodeItem(key, src any) error {
	if s.class.Kind != KindDictSession {
		return ErrNotDictSession
	}
	k, err := modelValue(key)
	if err != nil {
		return err
	}
	return itemPath(k, encodeInto(s.data(), k, src))
}

// itemRepr writes a key as Python writes it in session[key].
func itemRepr(k any) string {
	if s, ok := k.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(k)
}

func itemPath(k any, err error) error {
	var me *pickle.MappingError
	if errors.As(err, &me) {
		return &pickle.MappingError{Path: "session[" + itemRepr(k) + "]" + me.Path, Msg: me.Msg}
	}
	return err
}

// sessionPath makes the path of a mapping error start at the session attribute.
func sessionPath(name string, err error) error {
	var me *pickle.MappingError
	if errors.As(err, &me) {
		return &pickle.MappingError{Path: "session." + name + me.Path, Msg: me.Msg}
	}
	return err
}
