package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// leftovers returns the entries of parent other than keep.
func leftovers(t *testing.T, parent string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(parent)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if !contains(keep, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A write that fails part way (the second file cannot be created once the first exists)
// leaves neither the bundle nor the staging directory with the plaintext already written.
func TestPublishFailureLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bundle")
	err := publish(context.Background(), dir, map[string][]byte{"a": []byte("secret plaintext"), "a/b": []byte("more")}, nil)
	require.Error(t, err)
	_, statErr := os.Stat(dir)
	require.ErrorIs(t, statErr, os.ErrNotExist)
	require.Empty(t, leftovers(t, parent), "no staging directory left behind")
}

func TestPublishCancelledLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bundle")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := publish(ctx, dir, map[string][]byte{"messages.jsonl": []byte("secret plaintext")}, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, leftovers(t, parent))
}

// An existing empty directory is replaced by the whole bundle; the result is for the owner.
func TestPublishIntoEmptyDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bundle")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, publish(context.Background(), dir, map[string][]byte{"x/y": []byte("1"), "manifest.json.sig": []byte("2")}, nil))
	b, err := os.ReadFile(filepath.Join(dir, "x", "y"))
	require.NoError(t, err)
	require.Equal(t, "1", string(b))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.Equal(t, []string{}, append([]string{}, leftovers(t, parent, "bundle")...))
}

// A directory that filled up meanwhile is not replaced: the export fails and cleans up.
func TestPublishRefusesADirThatFilledUp(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bundle")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "theirs"), []byte("keep"), 0o600))
	require.Error(t, publish(context.Background(), dir, map[string][]byte{"messages.jsonl": []byte("secret")}, nil))
	b, err := os.ReadFile(filepath.Join(dir, "theirs"))
	require.NoError(t, err)
	require.Equal(t, "keep", string(b))
	require.Empty(t, leftovers(t, parent, "bundle"))
}
