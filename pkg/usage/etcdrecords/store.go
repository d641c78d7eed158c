// Package etcdrecords stores each replica's usage record in Flagpole's etcd,
// outside the objects' storage prefix: one key per replica, written once a
// flush interval whatever the traffic and however many flags there are, plus
// one archive that holds the counts of replicas that stopped. Every replica
// watches the records and hands them to its usage.View, so that a read of a
// flag sees every replica's counts without asking etcd.
package etcdrecords

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/usage"
)

const (
	// keyRoot holds the usage records, beside the leader election's root
	// and outside the storage prefix, so LISTs of the API never see them.
	keyRoot = "/flagpole-usage"

	// DefaultInterval is how often a replica writes its record.
	DefaultInterval = time.Minute
	// DefaultMaxRecordBytes bounds one record as stored: well inside etcd's
	// 1.5 MiB request limit (usage.Record.EncodeWithin says what gives way).
	DefaultMaxRecordBytes = 1 << 20
	// foldAfterIntervals is how many intervals a record may go unwritten
	// before the leader moves it to the archive: its replica stopped (a pod
	// replaced, a process restarted under a new identity).
	foldAfterIntervals = 5
	// finalFlushTimeout bounds the write of the last counts on shutdown.
	finalFlushTimeout = 5 * time.Second
)

// Prefix returns where the records of a Flagpole storing under
// storagePrefix (--etcd-prefix) live: separate for each prefix, as the
// leader election's key is.
func Prefix(storagePrefix string) string {
	return path.Join(keyRoot, path.Clean("/"+storagePrefix)) + "/"
}

var (
	recordWrites = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "flagpole_usage_record_writes_total",
		Help:           "Writes of this replica's usage record to etcd, by result (ok, error, conflict: the record had been archived).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	recordBytes = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "flagpole_usage_record_bytes",
		Help:           "Size of this replica's last usage record as stored.",
		StabilityLevel: metrics.ALPHA,
	})
	trimmedFlags = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "flagpole_usage_trimmed_flags_total",
		Help:           "Flags whose window counts did not fit into the usage record's size limit and were given up.",
		StabilityLevel: metrics.ALPHA,
	})
	registerMetrics sync.Once
)

// Config configures a Store.
type Config struct {
	// Client reaches Flagpole's etcd.
	Client *clientv3.Client
	// Prefix is Prefix(--etcd-prefix).
	Prefix string
	// Replica names this replica's record; unique to this process.
	Replica string
	// Counter counts this replica's evaluations; View merges the records.
	Counter *usage.Counter
	View    *usage.View
	// Interval between writes; DefaultInterval if zero.
	Interval time.Duration
	// MaxRecordBytes; DefaultMaxRecordBytes if zero.
	MaxRecordBytes int
	Clock          clock.PassiveClock
	// Exists tells which flags still exist; the counts of others are
	// dropped at the next write. Nil keeps every flag.
	Exists func(namespace, name string, uid types.UID) bool
}

// Store writes this replica's record and feeds the view every record.
type Store struct {
	cfg Config

	mu sync.Mutex
	// lastRevision is the modification revision of this replica's record as
	// it last wrote it; 0 before the first write.
	lastRevision int64
}

// New returns a store; Run runs it.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.Counter == nil || cfg.View == nil || cfg.Replica == "" || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, errors.New("usage records: client, counter, view, replica and a prefix ending in / are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(recordWrites, recordBytes, trimmedFlags)
	})
	return &Store{cfg: cfg}, nil
}

func (s *Store) replicaKey(replica string) string { return s.cfg.Prefix + "replicas/" + replica }
func (s *Store) archiveKey() string               { return s.cfg.Prefix + usage.ArchiveReplica }
func (s *Store) ownKey() string                   { return s.replicaKey(s.cfg.Replica) }

// Run loads every record, follows their changes and writes this replica's
// record every interval until ctx is done. Its last write is Close's.
func (s *Store) Run(ctx context.Context) {
	go s.follow(ctx)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "Writing the usage record failed; its counts are kept for the next write", "replica", s.cfg.Replica)
			}
		}
	}
}

// Close writes the counts made since the last write, within a few seconds:
// call it once the server no longer answers, before the etcd client closes.
func (s *Store) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		klog.ErrorS(err, "Writing the last usage record failed: the counts since the last write are lost", "replica", s.cfg.Replica)
	}
}

// follow keeps the view's records as etcd has them, reloading when its
// watch is lost (etcd compacted past it, or the connection broke).
func (s *Store) follow(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := s.load(ctx)
		if err != nil {
			klog.V(2).InfoS("Reading the usage records failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		w := s.cfg.Client.Watch(clientv3.WithRequireLeader(ctx), s.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range w {
			if err := resp.Err(); err != nil {
				klog.V(2).InfoS("The usage records' watch ended; reloading", "err", err)
				break
			}
			for _, ev := range resp.Events {
				key := string(ev.Kv.Key)
				if key == s.ownKey() {
					continue
				}
				if ev.Type == clientv3.EventTypeDelete {
					s.cfg.View.DeleteRecord(key)
					continue
				}
				s.setRecord(key, ev.Kv.Value)
			}
		}
	}
}

// load puts every stored record into the view and returns the revision read.
func (s *Store) load(ctx context.Context) (int64, error) {
	resp, err := s.cfg.Client.Get(ctx, s.cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	present := map[string]bool{}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		if key == s.ownKey() {
			continue
		}
		present[key] = true
		s.setRecord(key, kv.Value)
	}
	for key := range s.cfg.View.Records() {
		if !present[key] {
			s.cfg.View.DeleteRecord(key)
		}
	}
	return resp.Header.Revision, nil
}

func (s *Store) setRecord(key string, value []byte) {
	rec, err := usage.DecodeRecord(value)
	if err != nil {
		klog.ErrorS(err, "Ignoring a usage record that cannot be read", "key", key)
		return
	}
	s.cfg.View.SetRecord(key, rec)
}

// Flush writes this replica's record: one etcd write, or two when the
// leader had archived the record (the replica had stopped writing for
// foldAfterIntervals) and it is written anew with what was never stored.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		rec := s.cfg.Counter.Flush(s.cfg.Replica, s.cfg.Exists)
		data, stored, trimmed, err := rec.EncodeWithin(s.cfg.MaxRecordBytes)
		if err != nil {
			return err
		}
		if trimmed > 0 {
			trimmedFlags.Add(float64(trimmed))
			klog.InfoS("The usage record is over its size limit: the window counts of the flags evaluated longest ago are given up",
				"flags", trimmed, "limit", s.cfg.MaxRecordBytes)
		}
		resp, err := s.cfg.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(s.ownKey()), "=", s.lastRevision)).
			Then(clientv3.OpPut(s.ownKey(), string(data))).
			Commit()
		if err != nil {
			recordWrites.WithLabelValues("error").Inc()
			return err
		}
		if resp.Succeeded {
			recordWrites.WithLabelValues("ok").Inc()
			recordBytes.Set(float64(len(data)))
			s.lastRevision = resp.Header.Revision
			s.cfg.Counter.Commit(stored)
			return nil
		}
		// The record is not as this replica left it: the leader archived
		// it. What it held is the archive's now.
		recordWrites.WithLabelValues("conflict").Inc()
		klog.InfoS("This replica's usage record was archived while it did not write; writing it anew", "replica", s.cfg.Replica)
		s.cfg.Counter.Restart()
		s.lastRevision = 0
	}
	return fmt.Errorf("usage record %s: written by someone else", s.ownKey())
}

// Fold moves the records of replicas that stopped writing into the archive,
// in one etcd transaction that fails, and changes nothing, if any of them
// or the archive changed meanwhile. exists tells which flags still exist:
// the archive keeps none of a deleted flag. The leader calls it once an
// interval.
func (s *Store) Fold(ctx context.Context, exists func(namespace, name string, uid types.UID) bool) error {
	resp, err := s.cfg.Client.Get(ctx, s.cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	stale := now.Add(-foldAfterIntervals * s.cfg.Interval).Unix()
	var archive *usage.Record
	var archiveRevision int64
	var folded []*usage.Record
	var cmps []clientv3.Cmp
	var deletes []clientv3.Op
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		rec, err := usage.DecodeRecord(kv.Value)
		if key == s.archiveKey() {
			if err != nil {
				return fmt.Errorf("the usage archive %s cannot be read: %w", key, err)
			}
			archive, archiveRevision = rec, kv.ModRevision
			continue
		}
		if key == s.ownKey() {
			continue
		}
		if err != nil || rec.Written < stale {
			// A record nobody can read is removed rather than kept forever.
			if err == nil {
				folded = append(folded, rec)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision))
			deletes = append(deletes, clientv3.OpDelete(key))
		}
	}
	if len(deletes) == 0 {
		return nil
	}
	merged := Merge(archive, folded, exists, now)
	data, _, trimmed, err := merged.EncodeWithin(s.cfg.MaxRecordBytes)
	if err != nil {
		return err
	}
	if trimmed > 0 {
		trimmedFlags.Add(float64(trimmed))
	}
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.archiveKey()), "=", archiveRevision))
	txn, err := s.cfg.Client.Txn(ctx).If(cmps...).Then(append(deletes, clientv3.OpPut(s.archiveKey(), string(data)))...).Commit()
	if err != nil {
		return err
	}
	if txn.Succeeded {
		klog.InfoS("Moved the usage records of stopped replicas into the archive", "records", len(deletes))
	}
	return nil
}

// Merge adds records to the archive (nil: none yet), keeping only flags
// that exist and buckets a window still reaches.
func Merge(archive *usage.Record, records []*usage.Record, exists func(namespace, name string, uid types.UID) bool, now time.Time) *usage.Record {
	out := &usage.Record{Version: usage.RecordVersion, Replica: usage.ArchiveReplica, Written: now.Unix()}
	byUID := map[types.UID]*usage.FlagRecord{}
	var order []types.UID
	add := func(r *usage.Record) {
		if r == nil {
			return
		}
		if r.Since != 0 && (out.Since == 0 || r.Since < out.Since) {
			out.Since = r.Since
		}
		for i := range r.Flags {
			fr := &r.Flags[i]
			if !exists(fr.Namespace, fr.Name, fr.UID) {
				continue
			}
			m, ok := byUID[fr.UID]
			if !ok {
				m = &usage.FlagRecord{UID: fr.UID, Namespace: fr.Namespace, Name: fr.Name}
				byUID[fr.UID] = m
				order = append(order, fr.UID)
			}
			m.Merge(fr)
		}
	}
	add(archive)
	for _, r := range records {
		add(r)
	}
	for _, uid := range order {
		fr := byUID[uid]
		fr.Prune(now)
		out.Flags = append(out.Flags, *fr)
	}
	return out
}
