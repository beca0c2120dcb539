package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFileReplacesAtomicallyWith0600(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new content")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new content" {
		t.Fatalf("read %q, %v", b, err)
	}
	if runtime.GOOS != "windows" {
		if m := mode(t, p); m != FileMode {
			t.Fatalf("mode %v, want %v", m, FileMode)
		}
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Fatalf("temporary files left behind: %v", des)
	}
}

func TestWriteFileFailureLeavesOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state") // the directory does not exist
	if err := WriteFile(p, []byte("x")); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 0 {
		t.Fatalf("left %v", des)
	}
}

func TestCreateExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := CreateExclusive(p, []byte("once")); err != nil {
		t.Fatal(err)
	}
	err := CreateExclusive(p, []byte("twice"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "once" {
		t.Fatalf("content %q was replaced", b)
	}
	if runtime.GOOS != "windows" && mode(t, p) != FileMode {
		t.Fatalf("mode %v", mode(t, p))
	}
}

func TestMkdirAllIs0700WhateverTheUmask(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions on Windows")
	}
	root := t.TempDir()
	d := filepath.Join(root, "a", "b")
	if err := MkdirAll(d); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "a"), d} {
		if m := mode(t, p); m != DirMode {
			t.Fatalf("%s: mode %v, want %v", p, m, DirMode)
		}
	}
	wide := filepath.Join(root, "wide")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(wide); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, wide); m != DirMode {
		t.Fatalf("an existing 0755 directory stays %v", m)
	}
	f := filepath.Join(root, "file")
	os.WriteFile(f, nil, 0o600)
	if err := MkdirAll(f); err == nil {
		t.Fatal("MkdirAll over a file succeeded")
	}
}

func TestLockIsExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "LOCK")
	a, err := OpenFile(p, os.O_RDWR|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := Lock(a); err != nil {
		t.Fatal(err)
	}
	b, err := OpenFile(p, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	if err := Lock(b); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	b.Close()
	a.Close()
	c, err := OpenFile(p, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Lock(c); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
}

func TestScrubZeroesInPlaceThenRemoves(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(p, []byte("wrapped key bytes"), 0o600))
	f, err := os.Open(p) // a second handle sees the same inode after removal
	require.NoError(t, err)
	defer f.Close()
	var seen []byte
	require.NoError(t, Scrub(p, func(z []byte) error { seen = z; return nil }))
	require.Len(t, seen, len("wrapped key bytes"))
	_, err = os.Stat(p)
	require.ErrorIs(t, err, fs.ErrNotExist)
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	require.Equal(t, make([]byte, n), b[:n], "the old inode holds zeros, not the secret")
	require.Equal(t, len("wrapped key bytes"), n)
	require.NoError(t, Scrub(p, nil), "a missing file is fine")
	q := filepath.Join(dir, "kept")
	require.NoError(t, os.WriteFile(q, []byte("x"), 0o600))
	require.Error(t, Scrub(q, func([]byte) error { return errors.New("crash") }))
	_, err = os.Stat(q)
	require.NoError(t, err, "a failed scrub removes nothing")
}
