// Package scratchfs gives a test a file system of its own — a tmpfs of a
// given size, or ext4 on a loop device over a file in the test's temporary
// directory — and removes it when the test ends, failed or not: the disk
// cases of the hostile suite fill one, or cut its power.
//
// Mounting needs root (and, for ext4, losetup and mkfs.ext4). Without them a
// test skips, saying why — except under hack/test.sh (CI), which sets
// tools.EnvPrivileged: there it fails, so that CI never passes by skipping.
package scratchfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagpole-dev/flagpole/test/tools"
)

// Require ends the test unless it runs as root and every command is on
// PATH (tools.RequirePrivileged: a failure under hack/test.sh, a skip
// elsewhere).
func Require(t testing.TB, commands ...string) {
	t.Helper()
	tools.RequirePrivileged(t, commands...)
}

// FS is a mounted file system.
type FS struct {
	// Dir is where it is mounted.
	Dir string
	// Image is the file the loop device is over ("" for a tmpfs).
	Image string
	// Device is the loop device ("" for a tmpfs).
	Device string
}

// Tmpfs mounts a tmpfs of size (mount's size= option, e.g. "512m").
func Tmpfs(t testing.TB, size string) *FS {
	t.Helper()
	Require(t, "mount", "umount")
	fs := &FS{Dir: filepath.Join(t.TempDir(), "mnt")}
	if err := os.Mkdir(fs.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "flagpole-test", fs.Dir)
	t.Cleanup(func() { fs.unmount(t) })
	return fs
}

// Ext4 makes an ext4 file system of size bytes on a sparse file in the
// test's temporary directory and mounts it through a loop device.
func Ext4(t testing.TB, size int64) *FS {
	t.Helper()
	Require(t, "losetup", "mkfs.ext4", "mount", "umount")
	image := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "mkfs.ext4", "-q", "-F", image)
	return MountImage(t, image)
}

// MountImage attaches image to a free loop device and mounts it
// read-write: a journal left by a power cut is replayed, as at boot.
func MountImage(t testing.TB, image string) *FS {
	t.Helper()
	Require(t, "losetup", "mount", "umount")
	fs := &FS{Image: image, Dir: filepath.Join(t.TempDir(), "mnt")}
	if err := os.Mkdir(fs.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fs.Device = strings.TrimSpace(run(t, "losetup", "--find", "--show", image))
	t.Cleanup(func() { fs.detach(t) })
	run(t, "mount", fs.Device, fs.Dir)
	t.Cleanup(func() { fs.unmount(t) })
	return fs
}

// Snapshot copies the image as it is now, without syncing anything first:
// the copy holds what the block device holds, which is what survives a
// power cut — not what the page cache of the mounted file system still
// keeps for later. It reads the image through the loop device's backing
// file, which holds every write the loop device has taken.
func (fs *FS) Snapshot(t testing.TB) string {
	t.Helper()
	copyPath := filepath.Join(t.TempDir(), "after-power-cut.img")
	src, err := os.Open(fs.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := copySparse(dst, src); err != nil {
		t.Fatal(err)
	}
	return copyPath
}

// copySparse copies src to dst, leaving holes where src reads as zeros
// (the image is mostly empty).
func copySparse(dst *os.File, src io.Reader) error {
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	var off int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], zero[:n]) {
				if _, werr := dst.WriteAt(buf[:n], off); werr != nil {
					return werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return dst.Truncate(off)
		}
		if err != nil {
			return err
		}
	}
}

// unmount unmounts the file system, retrying while a process the test
// killed is still closing its files, and fails the test if it stays.
func (fs *FS) unmount(t testing.TB) {
	t.Helper()
	var out []byte
	for range 50 {
		var err error
		if out, err = exec.Command("umount", fs.Dir).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mounted(fs.Dir) {
		t.Errorf("%s is still mounted after the test: %s", fs.Dir, out)
	}
}

// detach detaches the loop device and checks that none is left on the
// image.
func (fs *FS) detach(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("losetup", "-d", fs.Device).CombinedOutput(); err != nil {
		t.Errorf("losetup -d %s: %v: %s", fs.Device, err, out)
	}
	// Detaching is asynchronous while the device is still being released.
	var left string
	for range 50 {
		out, _ := exec.Command("losetup", "--associated", fs.Image).Output()
		if left = strings.TrimSpace(string(out)); left == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("loop device left on %s after the test: %s", fs.Image, left)
}

// mounted reports whether dir is a mount point of this mount namespace.
func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
