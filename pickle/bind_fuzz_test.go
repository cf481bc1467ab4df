package pickle

import (
	"errors"
	"math/big"
	"testing"
	"time"
)

// fuzzShape is a struct with a field of every kind the mapping knows, named after the
// attributes of the application classes in testdata/py/myapp/models.py and of
// session3's sessions, so that fuzzed sessions reach deep into it.
type fuzzShape struct {
	Obj        *Object `pickle:",object"`
	ID         *string
	User       *fuzzShape
	Login      string
	Nickname   *string
	Balance    Decimal
	Points     *big.Int
	Score      float64
	Active     bool
	Roles      map[string]struct{}
	Tags       [2]string
	Prefs      map[string]any
	Avatar     []byte
	Cart       []fuzzShape
	Favorite   *fuzzShape
	Coupon     map[string]int
	LastLogin  time.Time
	Created    time.Time `pickle:",naive"`
	Birthday   time.Time `pickle:",date"`
	Counter    int8
	Total      big.Int
	Seen       []any
	FormTokens []string `pickle:"_form_tokens"`
	AccessTime float32  `pickle:"_access_time"`
	RemoteAddr string   `pickle:"_remote_address"`
	Qty        uint16
	Price      Decimal
	Class      Global
	Cycle      *fuzzShape `pickle:"self"`
	Data       map[int64]fuzzShape
	Ignored    int `pickle:"-"`
	Interface  any
	Embedded   fuzzEmbedded
	fuzzEmbedded
}

type fuzzEmbedded struct {
	Note string
}

// FuzzUnmarshalValue decodes any pickle that decodes into a struct with fields of every
// kind, and writes it back: errors are *MappingErrors, never panics, and what is
// written back encodes. Seeds: testdata/fuzz/FuzzUnmarshalValue (the pickles of
// testdata/py/pickle_bind_check.py) and the session3 fixtures.
func FuzzUnmarshalValue(f *testing.F) {
	for _, b := range fixtureFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			return
		}
		for _, c := range []*Converter{{}, {DisallowUnknownAttrs: true, MaxValues: 1 << 16}} {
			var s fuzzShape
			err = c.Unmarshal(v, &s)
			var me *MappingError
			if err != nil && !errors.As(err, &me) {
				t.Fatalf("error is not a *MappingError: %v", err)
			}
			if err != nil {
				continue
			}
			nv, err := c.Update(v, &s)
			if err != nil {
				if !errors.As(err, &me) {
					t.Fatalf("error is not a *MappingError: %v", err)
				}
				continue
			}
			if _, err := Marshal(nv); err != nil {
				t.Fatalf("writing back: %v", err)
			}
		}
		var anything any
		if err := UnmarshalValue(v, &anything); err != nil {
			t.Fatalf("decoding into any: %v", err)
		}
	})
}
