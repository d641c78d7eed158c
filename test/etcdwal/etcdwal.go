// Package etcdwal finds places in an etcd write-ahead log for tests that
// damage one on purpose.
package etcdwal

import (
	"encoding/binary"
	"os"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"google.golang.org/protobuf/proto"
)

// EntryPayloadEnd is the offset just past the payload of the n-th entry
// record (from 1) of the WAL segment file. Bytes just before it are covered
// by the record's CRC and by nothing else (the payload is a record's last
// field), so overwriting them is a CRC mismatch, whatever the records'
// sizes; a fixed offset sometimes hit a frame's length or a field tag
// (etcd then reports a parse error) or the zeros after the last record
// (etcd then repairs a torn write).
func EntryPayloadEnd(t testing.TB, file string, n int) int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const entryType = 2 // wal.entryType
	entries := 0
	for off := 0; off+8 <= len(data); {
		lenField := binary.LittleEndian.Uint64(data[off:])
		if lenField == 0 {
			break // the preallocated zeros after the last record
		}
		recBytes := int(lenField & ^(uint64(0xff) << 56))
		padBytes := 0
		if lenField>>63 == 1 {
			padBytes = int((lenField >> 56) & 0x7)
		}
		start, end := off+8, off+8+recBytes
		if end > len(data) {
			break
		}
		var rec walpb.Record
		if err := proto.Unmarshal(data[start:end], &rec); err != nil {
			t.Fatalf("%s: WAL record at %d: %v", file, off, err)
		}
		if rec.GetType() == entryType && len(rec.GetData()) >= 8 {
			if entries++; entries == n {
				return int64(end)
			}
		}
		off = end + padBytes
	}
	t.Fatalf("%s has %d entry records, fewer than %d", file, entries, n)
	return 0
}
