package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runScan(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDefaultLexicon(t *testing.T) {
	code, out, errs := runScan(t, "hello\r\n我哋轉去W h a t s A p p傾\nnothing\n保證回報")
	require.Equal(t, 0, code, errs)
	assert.Equal(t,
		`{"line":2,"rule":"off-channel.move","category":"off_channel","severity":"medium","term":"whatsapp","start":12,"end":27}`+"\n"+
			`{"line":4,"rule":"guarantee.returns","category":"guarantee_of_returns","severity":"high","term":"保證回報","start":0,"end":12}`+"\n",
		out)
	line := "我哋轉去W h a t s A p p傾"
	assert.Equal(t, "W h a t s A p p", line[12:27], "offsets are bytes of the original line")
}

func TestLexiconFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lex.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"name":"mine","rules":[
		{"id":"x","category":"test","severity":"info","terms":["insider","insider information"]}]}`), 0o600))
	code, out, errs := runScan(t, "Insider information <b>", "-lexicon", path)
	require.Equal(t, 0, code, errs)
	assert.Equal(t,
		`{"line":1,"rule":"x","category":"test","severity":"info","term":"insider","start":0,"end":7}`+"\n"+
			`{"line":1,"rule":"x","category":"test","severity":"info","term":"insider information","start":0,"end":19}`+"\n",
		out)
}

func TestBadUsage(t *testing.T) {
	code, out, errs := runScan(t, "", "-nope")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "flag provided but not defined: -nope")
	assert.Contains(t, errs, "usage: scan")

	code, _, errs = runScan(t, "", "messages.txt")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, `unexpected argument "messages.txt"`)

	code, _, errs = runScan(t, "", "-lexicon")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "flag needs an argument")
}

// TestBadLexicon: a lexicon that does not load is a refused invocation (exit 2, README "Exit
// status"), like the archiver's and review's -lexicon.
func TestBadLexicon(t *testing.T) {
	code, out, errs := runScan(t, "x", "-lexicon", filepath.Join(t.TempDir(), "missing.json"))
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "missing.json")

	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"name":"bad","rules":[{"id":"r1","category":"c","severity":"urgent","terms":["a"]}]}`), 0o600))
	code, _, errs = runScan(t, "x", "-lexicon", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, `rule "r1": field "severity"`)
}

// TestExitStatus (README, "Exit status"): no flags scans standard input with the default
// lexicon (0); a read that fails after the start is 1.
func TestExitStatus(t *testing.T) {
	code, _, errs := runScan(t, "")
	assert.Equal(t, 0, code, errs)
	var out, errb strings.Builder
	code = run(nil, io.MultiReader(strings.NewReader("line 1\n"), iotest.ErrReader(errors.New("disk gone"))), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "scan: reading line 2: disk gone")
}
