package scan

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadFile(t *testing.T) {
	def, err := Default()
	require.NoError(t, err)
	got, err := LoadFile("")
	require.NoError(t, err)
	assert.Same(t, def, got, `"" is the embedded lexicon`)

	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"name":"t","rules":[{"id":"r","category":"c","severity":"low","terms":["front run"]}]}`), 0o600))
	s, err := LoadFile(good)
	require.NoError(t, err)
	assert.Equal(t, "t", s.Name())
	assert.Len(t, s.ScanString("they front run orders"), 1)

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"name":`), 0o600))
	_, err = LoadFile(bad)
	assert.ErrorIs(t, err, ErrSyntax)
	var le *LexiconError
	assert.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), bad, "the error names the file")

	_, err = LoadFile(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestDecodeStrict(t *testing.T) {
	var v struct {
		Name string `json:"name"`
	}
	require.NoError(t, DecodeStrict([]byte(`{"name":"x"}`), &v, "thing"))
	assert.Equal(t, "x", v.Name)
	for _, tc := range []struct {
		in, text string
		want     error
	}{
		{`{"name":"x"} {}`, "malformed JSON: data after the thing", ErrSyntax},
		{`{"nmae":"x"}`, `unknown field "nmae"`, ErrUnknownField},
		{`{"name":1}`, `malformed JSON: field "name": number where string was expected`, ErrSyntax},
		{`{"name":`, "malformed JSON: unexpected EOF", ErrSyntax},
	} {
		err := DecodeStrict([]byte(tc.in), &v, "thing")
		assert.ErrorIs(t, err, tc.want, tc.in)
		assert.EqualError(t, err, tc.text, tc.in)
	}
}
