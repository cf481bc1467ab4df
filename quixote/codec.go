package quixote

import (
	"bytes"
	"fmt"

	"github.com/qxbridge/qxbridge/pickle"
)

// Decode reads a session file's content: one pickle of a session object, as
// session3's (or session4's) DirectorySessionStore writes it. classes describe
// application session classes (module, name, Kind, has_info); the built-in classes
// need no description, and an undescribed class is treated like session3's Session.
//
// A pickle that does not decode, or decodes to something that is not a session,
// is an error; errors for the latter wrap ErrNotSession.
func Decode(data []byte, classes ...Class) (*Session, error) {
	v, err := pickle.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("quixote: decoding session: %w", err)
	}
	s, err := FromObject(v, classes...)
	if err != nil {
		return nil, err
	}
	if len(data) >= 2 && data[0] == 0x80 { // PROTO opcode
		s.protocol = int(data[1])
	}
	return s, nil
}

// Encode returns the session as its store writes it: a pickle of the object, with
// every attribute Go did not change as it was loaded. The protocol is 5 for a
// session decoded from a protocol 5 file (session4's store writes
// pickle.HIGHEST_PROTOCOL) and for a new KindSession4 session, else 4, session3's.
//
// For a KindSession4 session Encode first sets _last_values as session4's
// save_session does (a pickle of the session's other attributes, made as CPython
// makes it), so that Python's is_dirty sees Go's changes and no others.
func (s *Session) Encode() ([]byte, error) {
	if s.class.Kind == KindSession4 {
		if err := s.preserveLastValues(); err != nil {
			return nil, fmt.Errorf("quixote: encoding session %s: %w", s.ID(), err)
		}
	}
	if s.protocol != session4Protocol {
		b, err := pickle.Marshal(s.obj)
		if err != nil {
			return nil, fmt.Errorf("quixote: encoding session %s: %w", s.ID(), err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	enc := pickle.NewEncoder(&buf)
	enc.Protocol = session4Protocol
	if err := enc.Encode(s.obj); err != nil {
		return nil, fmt.Errorf("quixote: encoding session %s: %w", s.ID(), err)
	}
	return buf.Bytes(), nil
}
