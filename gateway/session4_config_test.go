package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/quixote"
)

func TestParseClassSession4(t *testing.T) {
	c, err := parseClass("session4.Session4Session.Session4", "")
	require.NoError(t, err)
	assert.Equal(t, quixote.Session4Class, c)
}
