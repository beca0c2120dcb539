package backend

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/store/s3store"
	"github.com/stretchr/testify/require"
)

// TestS3SettingsAreRecordedAndHeld: ledger.store records the bucket's region, addressing and
// retention (the default resolved); a writer that leaves them out gets the recorded ones
// (Settled), one that gives the same is let through, and one that gives others is refused with
// ErrMismatch, which names the setting. A record written before settings were recorded holds a
// writer to none of them. A reader is held to none.
func TestS3SettingsAreRecordedAndHeld(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id-example")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
	t.Setenv("AWS_REGION", "")
	dir := t.TempDir()
	parse := func(blobs string) Spec {
		t.Helper()
		s, err := Parse(dir, "postgres://u@db:5432/ledgers?schema=a", blobs)
		require.NoError(t, err)
		return s
	}
	made := parse("s3://bkt?endpoint=http://h:1&region=eu-west-1")
	require.NoError(t, Record(dir, made))
	b, err := os.ReadFile(filepath.Join(dir, layout.StoreFile))
	require.NoError(t, err)
	require.Contains(t, string(b), `"region": "eu-west-1"`)
	require.Contains(t, string(b), `"path_style": true`)
	require.Contains(t, string(b), `"retention": "2557d"`, "the default retention, resolved")
	require.Equal(t, s3store.DefaultRetention, 2557*24*time.Hour)
	rec, found, err := Recorded(dir)
	require.NoError(t, err)
	require.True(t, found)

	for _, c := range []struct {
		blobs, refused string
	}{
		{"s3://bkt?endpoint=http://h:1", ""},
		{"s3://bkt?endpoint=http://h:1&region=eu-west-1&retention=2557d&path-style=true", ""},
		{"s3://bkt?endpoint=http://h:1&retention=61368h", ""}, // 2557 days, written otherwise
		{"s3://bkt?endpoint=http://h:1&retention=30d", "with retention=2557d, not 30d"},
		{"s3://bkt?endpoint=http://h:1&region=us-east-1", "with region=eu-west-1, not us-east-1"},
		{"s3://bkt?endpoint=http://h:1&path-style=false", "with path-style=true, not false"},
	} {
		given := parse(c.blobs)
		err := Match(dir, rec, given, true)
		if c.refused != "" {
			require.ErrorIs(t, err, ErrMismatch, c.blobs)
			require.ErrorContains(t, err, c.refused, c.blobs)
			require.NoError(t, Match(dir, rec, given, false), "a reader is held to no setting: %s", c.blobs)
			continue
		}
		require.NoError(t, err, c.blobs)
		got := Settled(rec, given).Blobs
		require.Equal(t, "eu-west-1", got.region, c.blobs)
		require.True(t, got.pathStyle, c.blobs)
		require.Equal(t, s3store.DefaultRetention, got.retention, c.blobs)
	}

	// A ledger.store from before: no settings, so none is held or taken.
	old := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(old, layout.StoreFile), []byte(`{"version":1,"store":{"kind":"postgres","host":"db","port":5432,"database":"ledgers","schema":"a"},"blobs":{"kind":"s3","endpoint":"http://h:1","bucket":"bkt"}}`), 0o600))
	rec, _, err = Recorded(old)
	require.NoError(t, err)
	given := parse("s3://bkt?endpoint=http://h:1&retention=30d")
	require.NoError(t, Match(old, rec, given, true))
	require.Equal(t, 30*24*time.Hour, Settled(rec, given).Blobs.retention)

	// Damaged settings are refused, not guessed.
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, layout.StoreFile), []byte(`{"version":1,"store":{"kind":"postgres","host":"db","port":5432,"database":"ledgers","schema":"a"},"blobs":{"kind":"s3","bucket":"bkt"},"s3":{"region":"x","path_style":false,"retention":"forever"}}`), 0o600))
	_, _, err = Recorded(bad)
	require.ErrorIs(t, err, ErrCorruptRecord)
}
