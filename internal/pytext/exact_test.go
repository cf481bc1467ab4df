package pytext

import (
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
)

// TestExactReprMatchesCPython compares ExactRepr with CPython's repr for values
// that test its rules: quoting, escapes of every Latin-1 character and of
// non-printable BMP and astral ones, float notation, big ints, nesting.
func TestExactReprMatchesCPython(t *testing.T) {
	script := `import pickle, sys
vals = [
    "".join(map(chr, range(0, 0x100))), "it's", 'say "hi"', "both ' and \"", "\\ \t\n\r",
    "\u2028\u2029\u200b\u200e\u3000\ufeff\ue000\ufffd\uffff\U0001f600\U000e0001\U0010ffff\u0378\u1680",
    0.1, 1e16, 1e15, 123456789012345678.0, 1e-4, 1e-5, -0.0, 1e22, 2.5e-300, float("inf"), float("nan"),
    10**30, -10**30, 0, -1, True, None, b"\x00'\x7f\x80", bytearray(b"ab"),
    [1, (2,), (), [], {}, {"k": [None]}], {1: "a", 2.5: "b", "c": (True, False), (1, 2): None},
]
for v in vals:
    print(pickle.dumps(v, 5).hex(), repr(v).encode("utf-8").hex())
`
	out, err := exec.Command(testpeer.Python(t), "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 27)
	for _, line := range lines {
		p, r, _ := strings.Cut(line, " ")
		data, err := hex.DecodeString(p)
		require.NoError(t, err)
		want, err := hex.DecodeString(r)
		require.NoError(t, err)
		v, err := pickle.Unmarshal(data)
		require.NoError(t, err)
		got, ok := ExactRepr(v)
		require.True(t, ok, "%s", want)
		assert.Equal(t, string(want), got)
	}
	// StrRepr is the same for valid text.
	assert.Equal(t, `'\xa0\u2028\U000e0001é'`, StrRepr("\u00a0\u2028\U000e0001é"))
	// What it refuses: objects, sets, classes, cycles.
	l := pickle.NewList()
	l.Items = append(l.Items, l)
	set, err := pickle.NewSet()
	require.NoError(t, err)
	for _, v := range []any{pickle.NewObject(pickle.Global{Module: "decimal", Name: "Decimal"}), set,
		pickle.Global{Module: "builtins", Name: "len"}, l} {
		_, ok := ExactRepr(v)
		assert.False(t, ok, "%T", v)
	}
}
