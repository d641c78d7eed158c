package standalone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.etcd.io/etcd/server/v3/storage/datadir"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// StartFreshFlag is the flag that lets a data directory whose datastore is
// lost start with an empty one.
const StartFreshFlag = "start-fresh-if-datastore-lost"

// datastoreIDKey holds, in embedded etcd, the random ID of the datastore,
// written when it is first initialised: outside the storage prefix, where
// no API object can be. etcd's own cluster and member IDs cannot tell two
// datastores apart: a single member with Flagpole's settings always gets
// the same ones.
const datastoreIDKey = "/flagpole-datastore/id"

// datastoreRecord is what <data-dir>/datastore.json says: that this data
// directory holds a datastore, which one, and, for the operator, etcd's IDs
// and when the record was written.
type datastoreRecord struct {
	DatastoreID   string    `json:"datastoreID"`
	EtcdClusterID string    `json:"etcdClusterID"`
	EtcdMemberID  string    `json:"etcdMemberID"`
	Recorded      time.Time `json:"recorded"`
}

// DatastoreOptions configure StartDatastore.
type DatastoreOptions struct {
	// StartTimeout bounds etcd's start.
	StartTimeout time.Duration
	// StartFresh lets a data directory whose datastore is lost or replaced
	// start with the datastore found (an empty one when it is gone): what
	// --start-fresh-if-datastore-lost says.
	StartFresh bool
	// MinFreeBytes is the free space below which writes are refused (see
	// DiskSpace); 0 means DefaultMinFreeBytes.
	MinFreeBytes int64
}

// StartDatastore starts embedded etcd in layout's data directory as
// StartEtcd does, refusing a data directory that held a datastore before
// (its record, <data-dir>/datastore.json, says so) whose etcd member is gone
// or is another datastore's, unless opts.StartFresh: a replica that lost its
// disk must not serve "flag not found" to every application as if it had
// never had flags. The first start records the datastore, durably, once
// etcd has initialised it. The returned etcd watches the free space of its
// file system (Etcd.DiskSpace).
func StartDatastore(layout Layout, opts DatastoreOptions) (_ *Etcd, err error) {
	recordFile := layout.DatastoreRecord()
	record, err := readDatastoreRecord(recordFile)
	if err != nil {
		return nil, err
	}
	dir := layout.EtcdDir()
	if record != nil && !memberPresent(dir) {
		if !opts.StartFresh {
			return nil, fmt.Errorf("the datastore is lost: %s says this data directory held datastore %s (recorded %s), but %s is missing or empty. "+
				"Restore %s from a backup (%s); or, to start with an empty datastore (every flag, segment and override gone), start once with --%s",
				recordFile, record.DatastoreID, record.Recorded.Format(time.RFC3339), datadir.ToMemberDir(dir), dir, RestoreDocs, StartFreshFlag)
		}
		klog.ErrorS(nil, "The datastore is lost; starting with an empty one, as --"+StartFreshFlag+" says", "record", recordFile, "lostDatastore", record.DatastoreID, "member", datadir.ToMemberDir(dir))
	}
	disk := NewDiskSpace(dir, opts.MinFreeBytes)
	disk.Check()
	e, err := StartEtcd(dir, layout.EtcdSocketDir(), opts.StartTimeout)
	if err != nil {
		return nil, disk.explain(err)
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err := recordDatastore(e, recordFile, record, opts.StartFresh); err != nil {
		return nil, err
	}
	e.DiskSpace = disk
	e.closers = append(e.closers, disk.Run())
	return e, nil
}

// memberPresent reports whether etcd's member directory under dir holds a
// write-ahead log or a database (what checkMember checks further).
func memberPresent(dir string) bool {
	_, err := os.Stat(datadir.ToBackendFileName(dir))
	return err == nil || wal.Exist(datadir.ToWALDir(dir))
}

func readDatastoreRecord(path string) (*datastoreRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r datastoreRecord
	if err := json.Unmarshal(data, &r); err != nil || r.DatastoreID == "" {
		if err == nil {
			err = errors.New("no datastoreID")
		}
		return nil, fmt.Errorf("%s cannot be read (%d bytes: %v): it records which datastore this data directory holds. "+
			"Restore it from a backup, or remove it: the next start records the datastore it finds (a lost one would then go unnoticed once)", path, len(data), err)
	}
	return &r, nil
}

// recordDatastore compares the datastore etcd holds with the record, and
// writes what is missing: the ID into a datastore that has none (first
// start, or a data directory of a Flagpole before records), and the record
// of the datastore found.
func recordDatastore(e *Etcd, recordFile string, record *datastoreRecord, startFresh bool) error {
	client := v3client.New(e.e.Server)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, datastoreIDKey)
	if err != nil {
		return fmt.Errorf("reading the datastore's ID from embedded etcd: %w", err)
	}
	var id string
	if len(resp.Kvs) > 0 {
		id = string(resp.Kvs[0].Value)
	}
	if record != nil && id != record.DatastoreID {
		found := "a datastore without a Flagpole datastore ID (an empty etcd?)"
		if id != "" {
			found = "datastore " + id
		}
		if !startFresh {
			return fmt.Errorf("the datastore is not this data directory's: %s says it held datastore %s, but %s holds %s. "+
				"Restore %s from a backup (%s); or, to keep the datastore found, start once with --%s",
				recordFile, record.DatastoreID, e.dir, found, e.dir, RestoreDocs, StartFreshFlag)
		}
		klog.ErrorS(nil, "The datastore is not the one recorded; keeping the one found, as --"+StartFreshFlag+" says", "record", recordFile, "recorded", record.DatastoreID, "found", found)
	}
	if id == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id = hex.EncodeToString(b)
		// Only if still absent: never replace an ID.
		txn, err := client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(datastoreIDKey), "=", 0)).
			Then(clientv3.OpPut(datastoreIDKey, id)).
			Commit()
		if err != nil {
			return fmt.Errorf("recording the datastore's ID in embedded etcd: %w", err)
		}
		if !txn.Succeeded {
			return errors.New("recording the datastore's ID in embedded etcd: another writer recorded one meanwhile")
		}
	}
	if record != nil && record.DatastoreID == id {
		return nil
	}
	r := datastoreRecord{
		DatastoreID:   id,
		EtcdClusterID: e.e.Server.Cluster().ID().String(),
		EtcdMemberID:  e.e.Server.MemberID().String(),
		Recorded:      time.Now().UTC().Truncate(time.Second),
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(recordFile, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording the datastore: %w", err)
	}
	klog.InfoS("Recorded the datastore this data directory holds", "record", recordFile, "datastore", id)
	return nil
}
