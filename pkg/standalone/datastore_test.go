package standalone

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/datadir"
)

func startDatastore(t *testing.T, layout Layout, startFresh bool) (*Etcd, error) {
	t.Helper()
	return StartDatastore(layout, DatastoreOptions{StartTimeout: time.Minute, StartFresh: startFresh})
}

func recordedID(t *testing.T, layout Layout) string {
	t.Helper()
	data, err := os.ReadFile(layout.DatastoreRecord())
	if err != nil {
		t.Fatal(err)
	}
	var r datastoreRecord
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", layout.DatastoreRecord(), err)
	}
	if len(r.DatastoreID) != 32 || r.EtcdClusterID == "" || r.EtcdMemberID == "" || r.Recorded.IsZero() {
		t.Fatalf("record %+v", r)
	}
	if fi, err := os.Stat(layout.DatastoreRecord()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	return r.DatastoreID
}

func mustStart(t *testing.T, layout Layout, startFresh bool) {
	t.Helper()
	e, err := startDatastore(t, layout, startFresh)
	if err != nil {
		t.Fatal(err)
	}
	if e.DiskSpace == nil {
		t.Error("StartDatastore gave no disk space check")
	}
	e.Close()
}

func assertRefused(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("StartDatastore started")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// A data directory that held a datastore refuses to start without it, or
// with another one, unless told to start fresh; the record follows the
// datastore the server accepted.
func TestStartDatastoreLostOrReplaced(t *testing.T) {
	layout := Layout{DataDir: t.TempDir()}
	mustStart(t, layout, false)
	first := recordedID(t, layout)

	// A restart keeps the datastore and its record.
	mustStart(t, layout, false)
	if id := recordedID(t, layout); id != first {
		t.Fatalf("restart recorded %s, want %s", id, first)
	}

	// The member is gone: refused, and nothing is created.
	member := datadir.ToMemberDir(layout.EtcdDir())
	if err := os.RemoveAll(member); err != nil {
		t.Fatal(err)
	}
	_, err := startDatastore(t, layout, false)
	assertRefused(t, err, "the datastore is lost: "+layout.DatastoreRecord(), "datastore "+first, member+" is missing or empty",
		"Restore "+layout.EtcdDir()+" from a backup ("+RestoreDocs+")", "--"+StartFreshFlag)
	if _, err := os.Stat(member); !os.IsNotExist(err) {
		t.Errorf("a refused start left %s behind (%v)", member, err)
	}

	// Told to start fresh: an empty datastore, recorded anew.
	mustStart(t, layout, true)
	fresh := recordedID(t, layout)
	if fresh == first {
		t.Fatal("the fresh datastore has the lost one's ID")
	}

	// Another data directory's datastore in its place: refused, unless told.
	other := Layout{DataDir: t.TempDir()}
	mustStart(t, other, false)
	if err := os.RemoveAll(layout.EtcdDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(layout.EtcdDir(), os.DirFS(other.EtcdDir())); err != nil {
		t.Fatal(err)
	}
	_, err = startDatastore(t, layout, false)
	assertRefused(t, err, "the datastore is not this data directory's: "+layout.DatastoreRecord()+" says it held datastore "+fresh,
		"holds datastore "+recordedID(t, other), "--"+StartFreshFlag)
	mustStart(t, layout, true)
	if id := recordedID(t, layout); id != recordedID(t, other) {
		t.Errorf("after --%s the record says %s, want the datastore found, %s", StartFreshFlag, id, recordedID(t, other))
	}

	// A record lost (or a data directory of a Flagpole before records):
	// the datastore's own ID is recorded again.
	if err := os.Remove(layout.DatastoreRecord()); err != nil {
		t.Fatal(err)
	}
	mustStart(t, layout, false)
	if id := recordedID(t, layout); id != recordedID(t, other) {
		t.Errorf("re-recorded %s, want the datastore's ID %s", id, recordedID(t, other))
	}
}

// An unreadable record is an error that names it; it is never taken for
// "no datastore yet".
func TestStartDatastoreDamagedRecord(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "truncated": `{"datastoreID": "ab`, "no ID": `{}`} {
		t.Run(name, func(t *testing.T) {
			layout := Layout{DataDir: t.TempDir()}
			if err := os.WriteFile(layout.DatastoreRecord(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := startDatastore(t, layout, false)
			assertRefused(t, err, layout.DatastoreRecord()+" cannot be read", "Restore it from a backup, or remove it")
			if _, err := os.Stat(filepath.Join(layout.EtcdDir(), "member")); !os.IsNotExist(err) {
				t.Errorf("etcd started anyway (%v)", err)
			}
		})
	}
}
