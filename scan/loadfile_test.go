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
