package quixote

import (
	"fmt"

	"github.com/qxbridge/qxbridge/pickle"
)

// Decode reads a session file's content: one pickle of a session object, as
// session3's DirectorySessionStore writes it. classes describe application
// session classes (module, name, Kind, has_info); the built-in classes need no
// description, and an undescribed class is treated like session3's Session.
//
// A pickle that does not decode, or decodes to something that is not a session,
// is an error; errors for the latter wrap ErrNotSession.
func Decode(data []byte, classes ...Class) (*Session, error) {
	v, err := pickle.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("quixote: decoding session: %w", err)
	}
	return FromObject(v, classes...)
}

// Encode returns the session as session3 writes it: a protocol 4 pickle of the
// object, with every attribute Go did not change as it was loaded.
func (s *Session) Encode() ([]byte, error) {
	b, err := pickle.Marshal(s.obj)
	if err != nil {
		return nil, fmt.Errorf("quixote: encoding session %s: %w", s.ID(), err)
	}
	return b, nil
}
