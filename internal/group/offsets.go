package group

// Committed offsets and group metadata live in the internal topic
// __consumer_offsets (statelog), in Kafka's own record schemas, so Kafka's
// tools and lag monitors can read them:
//
//	offset commit:  key OffsetCommitKey v1 (group, topic, partition),
//	                value OffsetCommitValue v3 (offset, leader epoch,
//	                metadata, commit timestamp); null value: the offset
//	                was deleted or expired
//	group metadata: key GroupMetadataKey v2 (group), value
//	                GroupMetadataValue v3 (persist.go); null value: the
//	                group was deleted
//	consumer groups (KIP-848): key versions 3-8 (persist848.go,
//	                records848.go)
//
// A group's records all go to partition statelog.PartitionFor(group, n),
// as in Kafka. One request is one batch, appended and made durable by the
// broker's group commit before the request is answered; it is applied to
// memory only after that, and the record's offset orders racing writes of a
// key (a key always maps to the same partition), so OffsetFetch never shows
// a commit that a crash could lose and the last append always wins. At start
// every partition is replayed into memory, the last record of a key
// winning. The cleaner compacts the topic (cleanup.policy=compact); nothing
// here rewrites files.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Offset is one committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64 // commit time, unix ms
}

type offsetEntry struct {
	Offset
	seq     int64 // the record's offset in its partition; a later one wins
	deleted bool
}

// Record key versions of __consumer_offsets (Kafka's CoordinatorRecordType).
const (
	keyOffsetCommit  = 1 // 0 and 1 share the schema; Kafka writes 1
	keyGroupMetadata = 2
	// 3-8 are the KIP-848 consumer-group records (records848.go); 9+
	// (share groups, regular expressions) are skipped on replay.
	valueOffsetCommit = 3
)

// offsetStore is the in-memory view of __consumer_offsets and its writer.
type offsetStore struct {
	parts []statelog.Partition
	lg    *slog.Logger

	mu     sync.Mutex
	groups map[string]map[TP]*offsetEntry
	// loaded holds each group's last group-metadata record found by
	// replay (persist.go), until Open has restored the groups.
	loaded map[string]*loadedGroup
	// loadedCG holds the consumer groups (KIP-848) found by replay
	// (persist848.go), until Open has restored them.
	loadedCG map[string]*loadedCGroup
	// pending are the offsets of open transactions coordinated on another
	// broker, by producer and partition (txn_offsets.go).
	pending map[txnKey][]change
}

var errNoPartitions = errors.New("group: no __consumer_offsets partitions")

func newOffsetStore(parts []statelog.Partition, lg *slog.Logger) (*offsetStore, error) {
	if len(parts) == 0 {
		return nil, errNoPartitions
	}
	return &offsetStore{parts: parts, lg: lg, groups: map[string]map[TP]*offsetEntry{}, loaded: map[string]*loadedGroup{}, loadedCG: map[string]*loadedCGroup{},
		pending: map[txnKey][]change{}}, nil
}

// partitionOf is the __consumer_offsets partition of group id.
func (o *offsetStore) partitionOf(group string) int {
	return statelog.PartitionFor(group, len(o.parts))
}

// replay loads every partition.
func (o *offsetStore) replay() error {
	for i, p := range o.parts {
		var err error
		if tp, ok := p.(statelog.TxnPartition); ok {
			err = o.replayTxn(i, tp)
		} else {
			err = p.Replay(func(off int64, r *kmsg.Record) error {
				o.applyRecord(off, r)
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("group: replay __consumer_offsets-%d: %w", i, err)
		}
	}
	return nil
}

// applyRecord applies one replayed record. Records this version does not
// know (newer key versions, undecodable bytes) are skipped: the log is read
// by Kafka's tools too, and a newer broker's records must not stop a start.
func (o *offsetStore) applyRecord(off int64, r *kmsg.Record) {
	if len(r.Key) < 2 {
		return
	}
	switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
	case 0, keyOffsetCommit:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(r.Key) != nil {
			return
		}
		e := &offsetEntry{seq: off, deleted: r.Value == nil}
		if !e.deleted {
			var v kmsg.OffsetCommitValue
			if v.ReadFrom(r.Value) != nil {
				o.lg.Warn("skipping undecodable offset commit value", "group", k.Group, "offset", off)
				return
			}
			e.Offset = Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitMs: v.CommitTimestamp}
		}
		o.mu.Lock()
		o.applyLocked(k.Group, TP{Topic: k.Topic, Partition: k.Partition}, e)
		o.mu.Unlock()
	case keyGroupMetadata:
		o.applyGroupRecord(off, r) // persist.go
	case keyCGMetadata, keyCGPartitionMetadata, keyCGMember, keyCGTargetMetadata, keyCGTargetMember, keyCGCurrent:
		o.applyCGRecord(off, r) // persist848.go
	}
}

func encodeOffsetKey(group string, tp TP) []byte {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: group, Topic: tp.Topic, Partition: tp.Partition}
	return k.AppendTo(nil)
}

func encodeOffsetValue(off Offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = valueOffsetCommit
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = off.Offset, off.LeaderEpoch, off.Metadata, off.CommitMs
	return v.AppendTo(nil)
}

func (o *offsetStore) applyLocked(group string, tp TP, e *offsetEntry) {
	m := o.groups[group]
	if m == nil {
		m = map[TP]*offsetEntry{}
		o.groups[group] = m
	}
	// A tombstone stays as an entry too: its seq must still beat a
	// slower, earlier write of the key applied after it.
	if cur := m[tp]; cur == nil || cur.seq < e.seq {
		m[tp] = e
	}
}

// change is one offset to write: del means a tombstone.
type change struct {
	group string
	tp    TP
	off   Offset
	del   bool
}

// writeWait bounds a background write (expiry, transaction offsets).
const writeWait = 30 * time.Second

// write appends the changes, one batch per partition, waits until they are
// durable, and then applies them.
func (o *offsetStore) write(ctx context.Context, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	byPart := map[int][]int{}
	for i, c := range changes {
		p := o.partitionOf(c.group)
		byPart[p] = append(byPart[p], i)
	}
	type pending struct {
		idx  []int
		base int64
		wait func(context.Context) error
	}
	var pend []pending
	for p, idx := range byPart {
		recs := make([]kmsg.Record, len(idx))
		for j, i := range idx {
			c := changes[i]
			recs[j].Key = encodeOffsetKey(c.group, c.tp)
			if !c.del {
				recs[j].Value = encodeOffsetValue(c.off)
			}
		}
		base, wait, err := o.parts[p].Append(recs)
		if err != nil {
			return fmt.Errorf("group: append offsets: %w", err)
		}
		pend = append(pend, pending{idx, base, wait})
	}
	for _, pd := range pend {
		if err := pd.wait(ctx); err != nil {
			return fmt.Errorf("group: offsets not durable: %w", err)
		}
	}
	o.mu.Lock()
	for _, pd := range pend {
		for j, i := range pd.idx {
			c := changes[i]
			o.applyLocked(c.group, c.tp, &offsetEntry{Offset: c.off, seq: pd.base + int64(j), deleted: c.del})
		}
	}
	o.mu.Unlock()
	return nil
}

// fetch returns the live offsets of group; tps nil means all.
func (o *offsetStore) fetch(group string, tps []TP) map[TP]Offset {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.groups[group]
	out := map[TP]Offset{}
	if tps == nil {
		for tp, e := range m {
			if !e.deleted {
				out[tp] = e.Offset
			}
		}
		return out
	}
	for _, tp := range tps {
		if e := m[tp]; e != nil && !e.deleted {
			out[tp] = e.Offset
		}
	}
	return out
}

// groupsWithOffsets lists groups holding at least one live offset.
func (o *offsetStore) groupsWithOffsets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for g, m := range o.groups {
		for _, e := range m {
			if !e.deleted {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
