// Package durable writes files so that a crash or a power cut leaves each of
// them either as it was before or complete, never empty or cut short, and
// makes sure what it wrote is on the disk before it returns.
//
// A plain os.WriteFile is neither: the data may sit in the page cache for
// half a minute after the file's name and size reached the disk's journal,
// so that a power cut leaves a file of 0 bytes (on ext4 with delayed
// allocation, exactly what was seen with every file Flagpole wrote at its
// first start). WriteFile writes a temporary file in the same directory,
// fsyncs it, renames it over the target and fsyncs the directory, so the
// rename — the only step that changes what the name points to — happens
// after the data is durable and is durable itself when WriteFile returns.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, atomically and durably, and gives the
// file exactly the permission bits perm (the umask does not apply, and a
// file it replaces does not lend its own). The directory must exist; see
// MkdirAll.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// A dot name, so that a temporary file left by a crash is not taken for
	// one of the files it was meant to become.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; set perm before any byte is written,
	// so that a key is never readable by others, not even for a moment.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// MkdirAll creates dir and any missing parents with perm, as os.MkdirAll
// does, and fsyncs the parent of each directory it creates, so that a file
// written durably inside a new directory is not lost with the directory's
// own entry.
func MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Made meanwhile by someone else, who syncs it.
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory, which makes the entries created, renamed or
// removed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
