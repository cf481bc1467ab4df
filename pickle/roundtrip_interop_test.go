package pickle

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReencodeSession3Fixtures decodes every session file the real session3 wrote and
// encodes it again: the bytes must be the fixture's, byte for byte.
func TestReencodeSession3Fixtures(t *testing.T) {
	files, err := filepath.Glob(testpeer.Testdata("session3", "*.pkl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			v, err := Unmarshal(data)
			require.NoError(t, err)
			got, err := Marshal(v)
			require.NoError(t, err)
			assert.Equal(t, data, got)
		})
	}
}

type corpusEntry struct {
	Name     string `json:"name"`
	Protocol int    `json:"protocol"`
	Pickle   []byte `json:"pickle"`
}

// encodeCheckCorpus returns the pickles CPython makes of the cases of
// pickle_encode_check.py at protocols 2 to 5.
func encodeCheckCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "pickle_encode_check.py", "corpus")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var entries []corpusEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e corpusEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		entries = append(entries, e)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, entries)
	return entries
}

// decoderCorpus returns the protocol 2 to 5 pickles of pickle_corpus.py, the corpus
// the decoder's tests use.
func decoderCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "pickle_corpus.py")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var raw []struct {
		Name     string `json:"name"`
		Protocol int    `json:"protocol"`
		Pickle   string `json:"pickle"`
	}
	require.NoError(t, json.Unmarshal(out, &raw))
	var entries []corpusEntry
	for _, r := range raw {
		if r.Protocol < 2 {
			continue
		}
		data, err := hex.DecodeString(r.Pickle)
		require.NoError(t, err)
		entries = append(entries, corpusEntry{Name: "corpus/" + r.Name, Protocol: r.Protocol, Pickle: data})
	}
	require.NotEmpty(t, entries)
	return entries
}

// reencodeDiffers lists the CPython pickles whose re-encoding is expected to differ
// from CPython's bytes, by case name, each for a reason the package doc gives.
var reencodeDiffers = map[string]string{}

// TestReencodeCPythonPickles decodes pickles CPython made at protocols 2 to 5 (the
// cases of pickle_encode_check.py and the decoder's corpus, pickle_corpus.py) and
// encodes them again at the same protocol. The bytes must be CPython's; where the
// package doc says they cannot be, CPython must load both to the same object graph.
func TestReencodeCPythonPickles(t *testing.T) {
	type pair struct {
		Name string `json:"name"`
		A    []byte `json:"a"`
		B    []byte `json:"b"`
	}
	type graph struct {
		Name  string  `json:"name"`
		Graph bool    `json:"graph"`
		Why   *string `json:"why"`
	}
	var pairs []pair
	for _, e := range append(encodeCheckCorpus(t), decoderCorpus(t)...) {
		v, err := Unmarshal(e.Pickle)
		require.NoError(t, err, "%s/%d", e.Name, e.Protocol)
		got := encodeAt(t, v, e.Protocol)
		if reason, ok := reencodeDiffers[e.Name]; ok {
			assert.NotEqual(t, e.Pickle, got, "%s/%d was expected to differ (%s)", e.Name, e.Protocol, reason)
			pairs = append(pairs, pair{Name: e.Name, A: e.Pickle, B: got})
			continue
		}
		assert.Equal(t, e.Pickle, got, "%s/%d", e.Name, e.Protocol)
	}
	if len(pairs) > 0 {
		for _, r := range runEncodeCheck[pair, graph](t, "compare", pairs) {
			assert.True(t, r.Graph, "%s: %s", r.Name, encDeref(r.Why))
		}
	}
}
