package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
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
