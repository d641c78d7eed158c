package durable

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	// The umask must not narrow or widen what the caller asked for.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	dir := t.TempDir()
	path := filepath.Join(dir, "ca.crt")
	if err := WriteFile(path, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "first", 0o644)

	// Replacing a file: the new content and the new mode, not the old one's.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "second", 0o600)

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only ca.crt (no temporary file left)", names)
	}
}

// A write that cannot complete leaves the old file as it was and no
// temporary file behind.
func TestWriteFileFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.csv")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where the new file should go: the rename fails.
	target := filepath.Join(dir, "kubeconfig")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("new"), 0o600); err == nil {
		t.Fatal("renaming over a non-empty directory succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("new"), 0o600); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	assertFile(t, path, "old", 0o600)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestMkdirAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "pki")
	if err := MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a 0700 directory", d, fi, err)
		}
	}
	if err := MkdirAll(dir, 0o700); err != nil {
		t.Errorf("again: %v", err)
	}
	file := filepath.Join(dir, "f")
	if err := WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(file, 0o700); err == nil {
		t.Error("MkdirAll on a file succeeded")
	}
}

func assertFile(t *testing.T, path, content string, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != content {
		t.Errorf("%s holds %q (%v), want %q", path, got, err, content)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, perm)
	}
}
