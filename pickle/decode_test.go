package pickle

import (
	"encoding/json"
	"os/exec"
	"sync"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPy2to3NamesMatchCPython(t *testing.T) {
	out, err := exec.Command(testpeer.Python(t), "-c", `
import _compat_pickle, json
print(json.dumps({"names": [[m, n, m2, n2] for (m, n), (m2, n2) in _compat_pickle.NAME_MAPPING.items()],
                  "modules": _compat_pickle.IMPORT_MAPPING}))`).Output()
	require.NoError(t, err, stderrOf(err))
	var want struct {
		Names   [][4]string
		Modules map[string]string
	}
	require.NoError(t, json.Unmarshal(out, &want))
	require.Len(t, py2to3Names, len(want.Names))
	for _, n := range want.Names {
		assert.Equal(t, Global{n[2], n[3]}, py2to3Names[Global{n[0], n[1]}], "%s.%s", n[0], n[1])
	}
	assert.Equal(t, want.Modules, py2to3Modules)
	// And applied as find_class does: the pair first, else the module.
	assert.Equal(t, Global{"builtins", "str"}, py3Global(Global{"__builtin__", "unicode"}, 2))
	assert.Equal(t, Global{"builtins", "list"}, py3Global(Global{"__builtin__", "list"}, 0))
	assert.Equal(t, Global{"copyreg", "_reconstructor"}, py3Global(Global{"copy_reg", "_reconstructor"}, 1))
	assert.Equal(t, Global{"copy_reg", "_reconstructor"}, py3Global(Global{"copy_reg", "_reconstructor"}, 3))
	assert.Equal(t, Global{"myapp", "X"}, py3Global(Global{"myapp", "X"}, 0))
}

func TestDecodeDoesNotKeepTheInput(t *testing.T) {
	data := []byte("\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x03abc\x94C\x03xyz\x94\x96\x02\x00\x00\x00\x00\x00\x00\x00qre.")
	v, err := Unmarshal(data)
	require.NoError(t, err)
	want := NewList("abc", []byte("xyz"), &ByteArray{Data: []byte("qr")})
	require.True(t, Equal(want, v))
	for i := range data {
		data[i] = 'Z'
	}
	assert.True(t, Equal(want, v), "the value does not alias the caller's buffer")

	// Values cut from the decoder's copy of the input do not overwrite each other.
	l := v.(*List)
	b := l.Items[1].([]byte)
	b = append(b, '!')
	b[0] = 'X'
	assert.Equal(t, "abc", l.Items[0])
	assert.Equal(t, []byte("xyz"), l.Items[1])
	ba := l.Items[2].(*ByteArray)
	ba.Data = append(ba.Data, "more"...)
	assert.Equal(t, []byte("xyz"), l.Items[1])
}

func TestDecoderConcurrentUse(t *testing.T) {
	// The decoder state is pooled; run with -race.
	inputs := fixtureFiles(t)
	want := map[string]any{}
	for name, data := range inputs {
		v, err := Unmarshal(data)
		require.NoError(t, err)
		want[name] = v
	}
	var d Decoder
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for name, data := range inputs {
					v, err := d.Decode(data)
					if err != nil || !Equal(v, want[name]) {
						errs <- name
						return
					}
					if _, err := d.Decode(data[:len(data)/2]); err == nil {
						errs <- name + " (truncated)"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent decoding of %s went wrong", e)
	}
}

func TestDictsWithTheSameKeysChangeAlone(t *testing.T) {
	// pickle.dumps([{'a': 1, 'b': 2}, {'a': 3, 'b': 4}, {'a': 5, 'b': 6}, {'b': 7, 'a': 8}], 4):
	// the later dicts name their keys by memo reference to the first dict's.
	data := []byte("\x80\x04\x959\x00\x00\x00\x00\x00\x00\x00]\x94(}\x94(\x8c\x01a\x94K\x01\x8c\x01b\x94K\x02u}\x94(h\x02K\x03h\x03K\x04u}\x94(h\x02K\x05h\x03K\x06u}\x94(h\x03K\x07h\x02K\x08ue.")
	v, err := Unmarshal(data)
	require.NoError(t, err)
	items := v.(*List).Items
	dict := func(kv ...any) *Dict {
		d := NewDict()
		for i := 0; i < len(kv); i += 2 {
			require.NoError(t, d.Set(kv[i], kv[i+1]))
		}
		return d
	}
	require.True(t, Equal(NewList(dict("a", int64(1), "b", int64(2)), dict("a", int64(3), "b", int64(4)),
		dict("a", int64(5), "b", int64(6)), dict("b", int64(7), "a", int64(8))), v))

	d0, d1, d2 := items[0].(*Dict), items[1].(*Dict), items[2].(*Dict)
	require.NoError(t, d1.Set("a", int64(30)))
	require.True(t, d1.Delete("a"))
	require.NoError(t, d1.Set("c", int64(9)))
	require.True(t, d2.Delete("b"))
	require.NoError(t, d0.Set("z", int64(0)))
	assert.True(t, Equal(dict("a", int64(1), "b", int64(2), "z", int64(0)), d0))
	assert.True(t, Equal(dict("b", int64(4), "c", int64(9)), d1))
	assert.True(t, Equal(dict("a", int64(5)), d2))
	assert.True(t, Equal(dict("b", int64(7), "a", int64(8)), items[3]))
	assert.Equal(t, []any{"a", "b", "z"}, d0.Keys())
	assert.Equal(t, []any{"b", "c"}, d1.Keys())
	assert.Equal(t, []any{"a"}, d2.Keys())
}

func TestCopyASCII(t *testing.T) {
	for n := range 24 {
		src := make([]byte, n)
		for i := range src {
			src[i] = 'a' + byte(i)
		}
		dst := make([]byte, n)
		require.True(t, copyASCII(dst, src), n)
		require.Equal(t, src, dst)
		for i := range n {
			src[i] |= 0x80
			clear(dst)
			require.False(t, copyASCII(dst, src), "%d, non-ASCII at %d", n, i)
			require.Equal(t, src, dst)
			src[i] &^= 0x80
		}
	}
}
