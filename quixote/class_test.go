package quixote

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/pickle"
)

// A class's Init adds its __init__'s attributes after the base class's, for every
// kind, and a session made without one has only the base class's.
func TestNewSessionInit(t *testing.T) {
	for _, kind := range []Kind{KindSession3, KindDictSession, KindQuixote, KindSession4} {
		c := Class{Module: "shop.session", Name: "ShopSession", Kind: kind}
		base := NewSession(c, "192.0.2.1", time.Unix(1700000000, 0)).Names()
		c.Init = func(s *Session) {
			require.NoError(t, s.EncodeAttr("cart", []int{}))
			require.NoError(t, s.Set("visits", 0))
		}
		s := NewSession(c, "192.0.2.1", time.Unix(1700000000, 0))
		assert.Equal(t, append(base, "cart", "visits"), s.Names(), kind.String())
		cart, _ := s.Get("cart")
		require.IsType(t, &pickle.List{}, cart)
		assert.Empty(t, cart.(*pickle.List).Items)
		assert.Equal(t, "shop.session.ShopSession", pickle.TypeName(s.Object()))
	}
}
