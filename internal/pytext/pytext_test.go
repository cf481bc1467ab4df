package pytext

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPyFloatReprMatchesCPython compares FloatRepr with CPython's repr over a spread
// of magnitudes, the exponent boundaries and random bit patterns.
func TestPyFloatReprMatchesCPython(t *testing.T) {
	py := testpeer.Python(t)
	var fs []float64
	for e := -20; e <= 20; e++ {
		p := math.Pow(10, float64(e))
		fs = append(fs, p, -p, p*1.5, p*9.999999, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		f := math.Float64frombits(rng.Uint64())
		if !math.IsNaN(f) {
			fs = append(fs, f)
		}
	}
	fs = append(fs, 0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1795305505.661934)
	var in strings.Builder
	for _, f := range fs {
		in.WriteString(strconv.FormatUint(math.Float64bits(f), 10) + "\n")
	}
	cmd := exec.Command(py, "-c", `
import struct, sys
for line in sys.stdin:
    print(repr(struct.unpack("<d", struct.pack("<Q", int(line)))[0]))
`)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	require.NoError(t, err)
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, want, len(fs))
	for i, f := range fs {
		assert.Equal(t, want[i], FloatRepr(f), "bits %#x", math.Float64bits(f))
	}
}

// TestPyReprMatchesCPython compares Str and Repr with CPython's str and repr for
// the values the demo pages print.
func TestPyReprMatchesCPython(t *testing.T) {
	py := testpeer.Python(t)
	big1, _ := new(big.Int).SetString("340282366920938463463374607431768211456", 10)
	set, err := pickle.NewSet("a")
	require.NoError(t, err)
	values := []any{nil, true, false, int64(-7), big1, 2.5, "it's", `say "hi"`, `both ' and "`, "tab\tnl\n\\ é \x01",
		[]byte("b'\x00\xff"), pickle.NewList(int64(1), "x", nil), pickle.NewTuple(int64(1)), pickle.NewTuple(),
		pickle.NewTuple("a", 1.0), set, pickle.NewList()}
	d := pickle.NewDict()
	require.NoError(t, d.Set("k", pickle.NewList(true)))
	require.NoError(t, d.Set(int64(2), nil))
	values = append(values, d)
	var in strings.Builder
	for _, v := range values {
		data, err := pickle.Marshal(v)
		require.NoError(t, err)
		b, _ := json.Marshal(data) // base64 of the pickle
		in.Write(b)
		in.WriteByte('\n')
	}
	cmd := exec.Command(py, "-c", `
import base64, json, pickle, sys
for line in sys.stdin:
    v = pickle.loads(base64.b64decode(json.loads(line)))
    print(json.dumps([str(v), repr(v)]))
`)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, lines, len(values))
	for i, v := range values {
		var want [2]string
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &want))
		assert.Equal(t, want[0], Str(v), "str of %#v", v)
		assert.Equal(t, want[1], Repr(v), "repr of %#v", v)
	}
}

func TestPyFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		1795305505.661934: "1795305505.661934", 0: "0.0", 1: "1.0", -2.5: "-2.5", 0.1: "0.1",
		1e16: "1e+16", 1e15: "1000000000000000.0", 123456789012345680: "1.2345678901234568e+17",
		0.0001: "0.0001", 0.00001: "1e-05", 1.5e-07: "1.5e-07", 1e22: "1e+22", 12.0: "12.0",
	} {
		assert.Equal(t, want, FloatRepr(f), "%v", f)
	}
}
