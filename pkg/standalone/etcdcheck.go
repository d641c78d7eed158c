package standalone

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/datadir"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
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
func checkMember(dir string) (err error) {
	// bbolt and etcd's WAL decoder panic on data they cannot parse, and a
	// database file shorter than its pages faults when mmapped: the checks
	// run in a goroutine of their own that recovers both. SetPanicOnFault
	// applies to the goroutine that calls it only.
	done := make(chan error, 1)
	file := dir
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- damaged(dir, file, fmt.Sprint(r))
			}
		}()
		debug.SetPanicOnFault(true)
		done <- checkMemberFiles(dir, &file)
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

// checkDatabase opens etcd's bbolt database read-only, makes sure the file
// holds every page its metadata counts, reads every bucket, key and value
// (what etcd reads as it starts), and runs bbolt's consistency check. It
// must run in checkMember's goroutine: bbolt asserts on a page that is not
// what the tree says (a panic), and reading a page past the end of the file
// faults.
func checkDatabase(dir, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return damaged(dir, path, "the database is empty (0 bytes)")
	}
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
	return checkPages(dir, path, tx, fi.Size())
}

// checkPages checks an open database transaction against size, the file's
// length.
func checkPages(dir, path string, tx *bolt.Tx, size int64) error {
	if need := tx.Size(); need > size {
		return damaged(dir, path, fmt.Sprintf("the database is truncated: the file has %d bytes, its pages need %d", size, need))
	}
	if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return readBucket(b) }); err != nil {
		return damaged(dir, path, "the database cannot be read: "+err.Error())
	}
	// Every page etcd reads has been read (and a bad one panicked above);
	// bbolt's check adds what only a view of all pages shows, such as a page
	// two buckets share. It recovers its own panics, in a goroutine of its
	// own: only after the walk is that safe.
	// Drained to the end: the check goes on reading the transaction.
	var problems []error
	n := 0
	for err := range tx.Check() {
		if n++; n <= 3 {
			problems = append(problems, err)
		}
	}
	if n > 3 {
		problems = append(problems, fmt.Errorf("and %d more", n-3))
	}
	if len(problems) > 0 {
		return damaged(dir, path, "the database is inconsistent: "+errors.Join(problems...).Error())
	}
	return nil
}

// readBucket reads every key and value of b and its nested buckets; the
// checksum only makes sure each byte is read (values spill into overflow
// pages, read only when the value is).
func readBucket(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				return readBucket(nested)
			}
		}
		crc32.Update(crc32.ChecksumIEEE(k), crc32.IEEETable, v)
		return nil
	})
}

// damaged is the error for a damaged file of embedded etcd's data in dir:
// the file, the problem, and what to do.
func damaged(dir, file, problem string) error {
	return fmt.Errorf("embedded etcd's data is damaged: %s: %s. Flagpole does not start on a damaged datastore: "+
		"restore %s from a backup (%s)", file, problem, dir, RestoreDocs)
}
