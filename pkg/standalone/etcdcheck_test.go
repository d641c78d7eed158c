package standalone

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.etcd.io/etcd/server/v3/storage/datadir"
	"go.etcd.io/etcd/server/v3/storage/schema"

	"github.com/flagpole-dev/flagpole/test/etcdwal"
)

// newMember starts embedded etcd in a new directory, writes keys (one of
// them larger than a page, so that the database has overflow pages) and
// stops it; it returns etcd's data directory.
func newMember(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e, err := StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 40 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/registry/flagpole.dev/flags/ns/f%02d", i), strings.Repeat("v", 60)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "/registry/flagpole.dev/flags/ns/large", strings.Repeat("v", 10000)); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	e.Close()
	return filepath.Join(dir, "etcd")
}

func walFile(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(datadir.ToWALDir(dir), "*.wal"))
	if err != nil || len(files) != 1 {
		t.Fatalf("WAL files %v (%v), want one", files, err)
	}
	return files[0]
}

// dataEnd is the length of a WAL segment without its preallocated zeros.
func dataEnd(t *testing.T, file string) int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	return int64(end)
}

func writeAt(t *testing.T, file string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func garbage(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// Each damage etcd cannot survive is an error that names the file, the
// problem and the remedy; what etcd survives passes, and etcd starts.
func TestCheckMember(t *testing.T) {
	base := newMember(t)
	keysRoot := keyBucketRoot(t, datadir.ToBackendFileName(base))
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		// want: substrings of the error; none means the check passes and
		// etcd starts on the data.
		want []string
	}{
		{name: "intact"},
		{name: "4 KiB of garbage over a page", want: []string{fmt.Sprintf("snap/db: assertion failed: Page expected to be: %d, but self identifies as", keysRoot)},
			damage: func(t *testing.T, dir string) {
				writeAt(t, datadir.ToBackendFileName(dir), int64(keysRoot)*4096, garbage(1, 4096))
			}},
		{name: "truncated database", want: []string{"snap/db: the database is truncated: the file has 20000 bytes, its pages need"},
			damage: func(t *testing.T, dir string) {
				if err := os.Truncate(datadir.ToBackendFileName(dir), 20000); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "empty database", want: []string{"snap/db: the database is empty (0 bytes)"},
			damage: func(t *testing.T, dir string) {
				if err := os.Truncate(datadir.ToBackendFileName(dir), 0); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "WAL directory deleted", want: []string{"member/wal: the write-ahead log is missing (no *.wal file) although the database"},
			damage: func(t *testing.T, dir string) {
				if err := os.RemoveAll(datadir.ToWALDir(dir)); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "WAL CRC mismatch", want: []string{"the write-ahead log is damaged: walpb: crc mismatch", "in file '0000000000000000-0000000000000000.wal' at position"},
			damage: func(t *testing.T, dir string) {
				wal := walFile(t, dir)
				writeAt(t, wal, etcdwal.EntryPayloadEnd(t, wal, 10)-4, []byte("XXXX"))
			}},
		// What etcd survives on its own.
		{name: "torn write at the WAL's end", damage: func(t *testing.T, dir string) {
			wal := walFile(t, dir)
			if err := os.Truncate(wal, dataEnd(t, wal)-100); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "first meta page overwritten", damage: func(t *testing.T, dir string) {
			writeAt(t, datadir.ToBackendFileName(dir), 0, garbage(2, 4096))
		}},
		{name: "database deleted, WAL complete", damage: func(t *testing.T, dir string) {
			if err := os.Remove(datadir.ToBackendFileName(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "nothing there", damage: func(t *testing.T, dir string) {
			if err := os.RemoveAll(datadir.ToMemberDir(dir)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etcd")
			if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				tc.damage(t, dir)
			}
			err := checkMember(dir)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("checkMember: %v, want it to pass", err)
				}
				startAndRead(t, dir)
				return
			}
			if err == nil {
				t.Fatal("checkMember passed")
			}
			for _, want := range append(tc.want, "embedded etcd's data is damaged: "+dir, "Restore "+dir+" from a backup ("+RestoreDocs+")") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// keyBucketRoot is the page of the root of etcd's key bucket.
func keyBucketRoot(t *testing.T, db string) uint64 {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var root uint64
	err = bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Key.Name())
		if b == nil {
			return errors.New("no key bucket")
		}
		root = uint64(b.Root())
		return nil
	})
	if err != nil || root < 2 {
		t.Fatalf("key bucket root page %d: %v", root, err)
	}
	return root
}

// startAndRead starts etcd on dir, reads every key and stops it.
func startAndRead(t *testing.T, dir string) {
	t.Helper()
	e, err := StartEtcd(dir, filepath.Join(filepath.Dir(dir), "run"), time.Minute)
	if err != nil {
		t.Fatalf("etcd does not start on what checkMember passed: %v", err)
	}
	defer e.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("reading from etcd started on what checkMember passed: %v", err)
	}
}

// Garbage in any page of the database either passes the check — and etcd
// then starts on it and reads it — or is an error naming the database:
// never a crash of this process, which runs both.
func TestCheckMemberGarbageInEveryPage(t *testing.T) {
	base := newMember(t)
	fi, err := os.Stat(datadir.ToBackendFileName(base))
	if err != nil {
		t.Fatal(err)
	}
	// Past the pages in use, a database of etcd is a hole in the file.
	pages := dataEnd(t, datadir.ToBackendFileName(base)) / 4096
	if pages < 6 || fi.Size() < pages*4096 {
		t.Fatalf("a database of %d pages in use (%d bytes)", pages, fi.Size())
	}
	passed := 0
	for page := range pages + 1 {
		dir := filepath.Join(t.TempDir(), "etcd")
		if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
		// Inside the page, past its header: the page still says what it is,
		// its elements lie.
		writeAt(t, datadir.ToBackendFileName(dir), page*4096+200, garbage(page, 1500))
		if err := checkMember(dir); err != nil {
			if want := "embedded etcd's data is damaged: " + datadir.ToBackendFileName(dir) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("page %d: %v, want an error beginning %q", page, err, want)
			}
			continue
		}
		passed++
		startAndRead(t, dir)
	}
	t.Logf("%d of %d damaged pages passed the check (free pages, values etcd does not decode) and etcd served them", passed, pages+1)
}

var sink byte

// A fault reading memory — what a read past the end of an mmapped file is —
// is an error of the goroutine that checks, not a crash of the process.
func TestRecoveringFault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(file, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, 8192, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	if err := os.Truncate(file, 0); err != nil {
		t.Fatal(err)
	}
	err = recovering(func() error {
		sink = mem[4096] // SIGBUS: the page is past the end of the file
		return nil
	})
	var p panicked
	if !errors.As(err, &p) {
		t.Fatalf("reading past the end of an mmapped file: %v, want the fault as an error", err)
	}
	if fault, ok := p.value.(interface{ Addr() uintptr }); !ok || fault.Addr() == 0 {
		t.Errorf("reading past the end of an mmapped file: %v, want the fault as an error with its address", err)
	}
}

// A database lost after etcd compacted its WAL into a snapshot cannot be
// rebuilt: etcd would panic; the check says which file is missing.
func TestCheckMemberDatabaseLostAfterSnapshot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	cfg := embed.NewConfig()
	cfg.Name = "flagpole"
	cfg.Dir = dir
	cfg.LogLevel = "warn"
	socket := url.URL{Scheme: "unix", Path: filepath.Join(os.TempDir(), fmt.Sprintf("fp-snap-%d.sock", os.Getpid()))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{socket}, []url.URL{socket}
	cfg.ListenPeerUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.SnapshotCount = 20
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-e.Server.ReadyNotify()
	cli := v3client.New(e.Server)
	for i := range 50 {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	cli.Close()
	e.Close()

	db := datadir.ToBackendFileName(dir)
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	err = checkMember(dir)
	want := "embedded etcd's data is damaged: " + db + ": the database is missing, and the write-ahead log holds only the entries after its snapshot at index"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("checkMember: %v, want an error beginning %q", err, want)
	}
}
