// Package usage counts what real traffic does with each flag: evaluations by
// reason and variant over the last hour, day and week, when the flag and
// each variant were last served, and the rule errors seen. It has three
// parts:
//
//   - Counter (counter.go), an evaluator.Observer: cheap atomic counters on
//     the hot path, one entry per flag, and Flush, which turns what was
//     counted since the last flush into the replica's Record;
//   - Record (this file), one replica's counts in time buckets, the unit
//     that is stored (one per replica, pkg/usage/etcdrecords) and merged;
//   - View (view.go), the merge of every replica's Record with this
//     replica's live counts, which reads ask for.
//
// It imports no server package: the in-process provider (pkg/openfeature)
// counts with the same Counter and reports its counts to the server.
package usage

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Window is one span of time usage is counted over. Its counts are kept in
// buckets a quarter of its length, aligned to the Unix epoch, and it sums
// the current bucket and the four before: from between one and one and a
// quarter of its length ago until now. Aligned buckets of every replica add
// up without coordination.
type Window struct {
	Name   string
	Length time.Duration
}

// The windows' names, as status.usage.windows[].window gives them.
const (
	WindowHour = "1h"
	WindowDay  = "24h"
	WindowWeek = "7d"
)

// Windows are the spans a person reads: the last hour, day and week.
var Windows = [numWindows]Window{{WindowHour, time.Hour}, {WindowDay, 24 * time.Hour}, {WindowWeek, 7 * 24 * time.Hour}}

const (
	numWindows = 3
	// bucketsPerWindow is how many buckets a window's length holds; one more
	// (the current one, partly over) is kept.
	bucketsPerWindow = 4
	keptBuckets      = bucketsPerWindow + 1
)

// BucketLength is the length of one bucket of window w.
func (w Window) BucketLength() time.Duration { return w.Length / bucketsPerWindow }

// bucketIndex is the index of the bucket of w that holds t.
func (w Window) bucketIndex(t time.Time) int64 {
	return t.Unix() / int64(w.BucketLength()/time.Second)
}

// bucketStart is when bucket index of w begins.
func (w Window) bucketStart(index int64) time.Time {
	return time.Unix(index*int64(w.BucketLength()/time.Second), 0).UTC()
}

// firstKept is the oldest bucket index w keeps at now.
func (w Window) firstKept(now time.Time) int64 {
	return w.bucketIndex(now) - bucketsPerWindow
}

// reasonSlots is how many reasons are counted apart (flagpole.Reasons), and
// one more slot for what is none of them.
const reasonSlots = 7

var numReasons = len(flagpole.Reasons)

func init() {
	if numReasons+1 != reasonSlots {
		panic(fmt.Sprintf("usage: %d reasons need %d slots, not %d", numReasons, numReasons+1, reasonSlots))
	}
}

func reasonIndex(reason string) int {
	if i := slices.Index(flagpole.Reasons, reason); i >= 0 {
		return i
	}
	return numReasons
}

// Counts is what a bucket holds: evaluations by reason (the last slot: any
// other reason) and by variant served ("" counts none served). Variants
// are a short list rather than a map: a flag serves few, and a bucket of a
// map costs ten times the bytes.
type Counts struct {
	Reasons  [reasonSlots]uint64 `json:"r"`
	Variants []VariantN          `json:"v,omitempty"`
}

// VariantN is how often one variant was served.
type VariantN struct {
	Name string `json:"n"`
	N    uint64 `json:"c"`
}

// addVariant adds n servings of name.
func (c *Counts) addVariant(name string, n uint64) {
	for i := range c.Variants {
		if c.Variants[i].Name == name {
			c.Variants[i].N += n
			return
		}
	}
	c.Variants = append(c.Variants, VariantN{Name: name, N: n})
}

// Variant is how often name was served.
func (c *Counts) Variant(name string) uint64 {
	for _, v := range c.Variants {
		if v.Name == name {
			return v.N
		}
	}
	return 0
}

func (c *Counts) empty() bool {
	for _, n := range c.Reasons {
		if n != 0 {
			return false
		}
	}
	return len(c.Variants) == 0
}

// Add adds o to c.
func (c *Counts) Add(o *Counts) {
	for i, n := range o.Reasons {
		c.Reasons[i] += n
	}
	for _, v := range o.Variants {
		c.addVariant(v.Name, v.N)
	}
}

// Evaluations is how many evaluations c counts.
func (c *Counts) Evaluations() uint64 {
	var total uint64
	for _, n := range c.Reasons {
		total += n
	}
	return total
}

// Bucket is the counts of one bucket of a window.
type Bucket struct {
	Index int64 `json:"i"`
	Counts
}

// FlagRecord is one flag's usage as one replica (or the archive) saw it.
type FlagRecord struct {
	UID       types.UID `json:"uid"`
	Namespace string    `json:"ns"`
	Name      string    `json:"name"`
	// First and Last are when the flag was first and last evaluated, Unix
	// seconds; 0: never.
	First int64 `json:"first,omitempty"`
	Last  int64 `json:"last,omitempty"`
	// Served says when each variant was last served, Unix seconds; the
	// empty name is "no variant served".
	Served map[string]int64 `json:"served,omitempty"`
	// Buckets holds each window's buckets, oldest first, empty ones left out.
	Buckets [numWindows][]Bucket `json:"b"`
}

// Merge adds o's counts to r's and keeps the earlier first and the later
// last evaluation.
func (r *FlagRecord) Merge(o *FlagRecord) {
	if o.First != 0 && (r.First == 0 || o.First < r.First) {
		r.First = o.First
	}
	r.Last = max(r.Last, o.Last)
	for name, t := range o.Served {
		if r.Served == nil {
			r.Served = map[string]int64{}
		}
		r.Served[name] = max(r.Served[name], t)
	}
	for w := range o.Buckets {
		for _, b := range o.Buckets[w] {
			r.addToBucket(w, b.Index, &b.Counts)
		}
	}
}

// addToBucket adds c to bucket index of window w, keeping the buckets in
// order.
func (r *FlagRecord) addToBucket(w int, index int64, c *Counts) {
	if c.empty() {
		return
	}
	buckets := r.Buckets[w]
	i, found := slices.BinarySearchFunc(buckets, index, func(b Bucket, index int64) int {
		return int(b.Index - index)
	})
	if !found {
		buckets = slices.Insert(buckets, i, Bucket{Index: index})
	}
	buckets[i].Add(c)
	r.Buckets[w] = buckets
}

// Total is every count the record still holds: its longest window's.
func (r *FlagRecord) Total() Counts {
	var total Counts
	for _, b := range r.Buckets[numWindows-1] {
		total.Add(&b.Counts)
	}
	return total
}

// Prune drops the buckets no window reaches at now.
func (r *FlagRecord) Prune(now time.Time) {
	for w, window := range Windows {
		first := window.firstKept(now)
		r.Buckets[w] = slices.DeleteFunc(r.Buckets[w], func(b Bucket) bool { return b.Index < first })
	}
}

func (r *FlagRecord) clone() *FlagRecord {
	out := &FlagRecord{UID: r.UID, Namespace: r.Namespace, Name: r.Name}
	out.Merge(r)
	return out
}

// RecordVersion is the version of the stored Record format.
const RecordVersion = 1

// Record is everything one replica has counted that is not yet gone from
// every window, or (Replica ArchiveReplica) what replicas that stopped had.
type Record struct {
	Version int    `json:"v"`
	Replica string `json:"replica"`
	// Since is when this replica began counting (for the archive: the
	// earliest of the replicas it holds), Unix seconds.
	Since int64 `json:"since"`
	// Written is when the record was written, Unix seconds.
	Written int64        `json:"written"`
	Flags   []FlagRecord `json:"flags,omitempty"`
}

// ArchiveReplica names the record that holds the counts of replicas that
// stopped.
const ArchiveReplica = "archive"

// Encode writes the record as gzip-compressed JSON: one small value, still
// readable with etcdctl and gunzip.
func (r *Record) Encode() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxDecodedRecordBytes bounds what a stored record may inflate to.
const maxDecodedRecordBytes = 64 << 20

// DecodeRecord reads a record Encode wrote.
func DecodeRecord(data []byte) (*Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("usage record: %w", err)
	}
	var r Record
	if err := json.NewDecoder(io.LimitReader(zr, maxDecodedRecordBytes)).Decode(&r); err != nil {
		return nil, fmt.Errorf("usage record: %w", err)
	}
	if r.Version != RecordVersion {
		return nil, fmt.Errorf("usage record of version %d: this server reads version %d", r.Version, RecordVersion)
	}
	return &r, nil
}

// EncodeWithin encodes the record in at most limit bytes, and returns the
// record it encoded. A record over the limit loses, flag by flag from the
// one evaluated longest ago, first its window counts, then the flag itself:
// the flags in use keep everything, and a flag that loses its counts keeps
// when it was last evaluated as long as anything can be kept. trimmed is how
// many flags lost something.
func (r *Record) EncodeWithin(limit int) (data []byte, encoded *Record, trimmed int, err error) {
	data, err = r.Encode()
	if err != nil || len(data) <= limit || len(r.Flags) == 0 {
		return data, r, 0, err
	}
	order := make([]int, len(r.Flags))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(r.Flags[a].Last - r.Flags[b].Last) })
	out := *r
	out.Flags = slices.Clone(r.Flags)
	// Double what is trimmed until it fits: a few encodings, not one per flag.
	for n := max(1, len(order)/8); ; n = min(len(order), n*2) {
		for _, i := range order[:n] {
			out.Flags[i].Buckets = [numWindows][]Bucket{}
		}
		if data, err = out.Encode(); err != nil || len(data) <= limit {
			return data, &out, n, err
		}
		if n == len(order) {
			break
		}
	}
	all := out.Flags
	for keep := len(order) / 2; keep > 0; keep /= 2 {
		out.Flags = make([]FlagRecord, 0, keep)
		for _, i := range order[len(order)-keep:] {
			out.Flags = append(out.Flags, all[i])
		}
		if data, err = out.Encode(); err != nil || len(data) <= limit {
			return data, &out, len(order), err
		}
	}
	out.Flags = nil
	data, err = out.Encode()
	return data, &out, len(order), err
}
