package standalone

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/storage/datadir"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"k8s.io/klog/v2"
)

// RestoreDocs is where the operator is sent when the datastore is damaged or lost.
const RestoreDocs = "docs/operations.md#backup-and-restore"

// checkMember looks at embedded etcd's member directory under dir before
// etcd opens it, and turns what etcd would do with a damaged one — a panic
// in one of bbolt's goroutines with a dump of every goroutine, a SIGBUS
// crash, or a start as a new member on top of the old database that never
// becomes ready — into one error that names the file, the problem and what
// to do. What etcd handles well itself is left to it: a torn write at the
// end of the WAL (etcd repairs it), one of the database's two meta pages
// damaged (bbolt uses the other), and a database older than the WAL's last
// snapshot (etcd names both indexes).
//
// A member directory that is missing or empty passes: whether that is a
// first start or a lost datastore is the datastore record's business
// (StartDatastore).
func checkMember(dir string) error {
	file := dir
	err := recovering(func() error { return checkMemberFiles(dir, &file) })
	var p panicked
	if errors.As(err, &p) {
		return damaged(dir, file, p.Error())
	}
	return err
}

// panicked is a panic or a fault that recovering turned into an error.
type panicked struct{ value any }

func (p panicked) Error() string { return fmt.Sprint(p.value) }

// recovering runs f in a goroutine of its own and returns its error, or its
// panic as a panicked error. bbolt and etcd's WAL decoder panic on data they
// cannot parse, and a database file shorter than its pages faults when read
// through its mmap: with SetPanicOnFault — which applies to the goroutine
// that calls it only — a fault is a panic too, and recovered.
func recovering(f func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- panicked{r}
			}
		}()
		debug.SetPanicOnFault(true)
		done <- f()
	}()
	return <-done
}

// checkMemberFiles checks dir's member, setting *file to each file or
// directory before it reads it, so that a panic names it.
func checkMemberFiles(dir string, file *string) error {
	walDir, db := datadir.ToWALDir(dir), datadir.ToBackendFileName(dir)
	haveWAL := wal.Exist(walDir)
	_, err := os.Stat(db)
	haveDB := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	switch {
	case !haveWAL && !haveDB:
		return nil
	case !haveWAL:
		return damaged(dir, walDir, fmt.Sprintf("the write-ahead log is missing (no *.wal file) although the database %s exists; "+
			"etcd would start a new member on top of the old database and never become ready", db))
	}
	*file = walDir
	snapshots, err := wal.ValidSnapshotEntries(zap.NewNop(), walDir)
	if err != nil {
		return damaged(dir, walDir, "the write-ahead log is damaged: "+err.Error())
	}
	if !haveDB {
		if last := snapshots[len(snapshots)-1]; last.GetIndex() > 0 {
			return damaged(dir, db, fmt.Sprintf("the database is missing, and the write-ahead log holds only the entries after its snapshot at index %d, "+
				"so the database cannot be rebuilt from it", last.GetIndex()))
		}
		// The WAL holds every entry since the member began: etcd rebuilds
		// the database from it.
		klog.InfoS("Embedded etcd's database is missing; etcd rebuilds it from the write-ahead log, which is complete", "database", db, "wal", walDir)
		return nil
	}
	*file = db
	return checkDatabase(dir, db)
}

// checkDatabase checks etcd's bbolt database the way etcd reads it as it
// starts, in the same order, but where a failure is an error instead of a
// crash: bbolt asserts (a panic) on a page that is not what the tree says,
// reading a page past the end of the file faults, and both happen in
// goroutines of bbolt's own when etcd opens the file. It must run in
// checkMember's goroutine, which recovers panics and faults.
func checkDatabase(dir, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return damaged(dir, path, "the database is empty (0 bytes)")
	}
	if err := readDatabase(dir, path, fi.Size()); err != nil {
		return err
	}
	// etcd opens bbolt with NoFreelistSync: bbolt rebuilds its free list
	// from the pages it reaches, checking the order of every key against
	// its page's neighbours and ancestors, and panics on the first that is
	// out of place. Its walk runs in a goroutine of bbolt's, where an
	// assertion cannot be recovered, but the one it sends each problem to is
	// this one — safe now that readDatabase read every page it reaches.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: 5 * time.Second})
	if err != nil {
		return damaged(dir, path, "the database cannot be opened: "+err.Error())
	}
	return db.Close()
}

// readDatabase opens the database read-only, makes sure the file holds
// every page its metadata counts, and reads every bucket, key and value;
// each value of etcd's key bucket is decoded as etcd does when it rebuilds
// its index.
func readDatabase(dir, path string, size int64) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return damaged(dir, path, "the database cannot be opened: "+err.Error())
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return damaged(dir, path, "the database cannot be read: "+err.Error())
	}
	// Before db.Close (defers run last first): a transaction left open
	// holds the lock Close waits for.
	defer tx.Rollback()
	if need := tx.Size(); need > size {
		return damaged(dir, path, fmt.Sprintf("the database is truncated: the file has %d bytes, its pages need %d", size, need))
	}
	err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		return readBucket(b, bytes.Equal(name, schema.Key.Name()))
	})
	if err != nil {
		return damaged(dir, path, "the database cannot be read: "+err.Error())
	}
	return nil
}

// readBucket reads every key and value of b and its nested buckets (values
// spill into overflow pages, read only when the value is: the checksum
// makes sure every byte is); etcdKeys says the values are etcd's
// mvccpb.KeyValue.
func readBucket(b *bolt.Bucket, etcdKeys bool) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				return readBucket(nested, false)
			}
		}
		if etcdKeys {
			if err := proto.Unmarshal(v, &mvccpb.KeyValue{}); err != nil {
				return fmt.Errorf("the value of revision %x in bucket %s cannot be decoded: %w", k, schema.Key, err)
			}
			return nil
		}
		crc32.Update(crc32.ChecksumIEEE(k), crc32.IEEETable, v)
		return nil
	})
}

// damaged is the error for a damaged file of embedded etcd's data in dir:
// the file, the problem, and what to do.
func damaged(dir, file, problem string) error {
	return fmt.Errorf("embedded etcd's data is damaged: %s: %s. Flagpole does not start on a damaged datastore. "+
		"Restore %s from a backup (%s)", file, problem, dir, RestoreDocs)
}
