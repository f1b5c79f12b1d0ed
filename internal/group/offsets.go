package group

// The offsets log, <data-dir>/__consumer_offsets/, is a storage.Log (the
// partition-log code) holding v2 record batches of uncompressed records:
//
//	key:   0x00 (version), uint16 len + group, uint16 len + topic,
//	       int32 partition (big-endian)
//	value: JSON {"o": offset, "e": leader epoch, "m": metadata,
//	       "t": commit time (unix ms)}; a null value is a tombstone (the
//	       offset was deleted or expired)
//
// One OffsetCommit request is one batch, appended and fsynced before the
// request is answered; concurrent commits share fsyncs (storage.Log.Sync
// covers everything appended before it). On open the log is replayed in
// order into memory; the last record of a key wins.
//
// Compaction: when the log exceeds CompactBytes and holds more than twice as
// many records as live offsets, the live offsets are written to a fresh log
// in <dir>.compact, which is fsynced and closed; then <dir> is renamed to
// <dir>.old, <dir>.compact to <dir>, the parent directory is fsynced and
// <dir>.old removed. Open finishes or undoes an interrupted compaction: a
// missing <dir> with a <dir>.compact present means the swap was cut between
// the renames (the compact log is complete, it was closed before the first
// rename), anything else left in .compact or .old is discarded.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
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
	seq     uint64 // append order; a later append always wins
	deleted bool
}

type offsetValue struct {
	O int64  `json:"o"`
	E int32  `json:"e"`
	M string `json:"m,omitempty"`
	T int64  `json:"t"`
}

// offsetLog is the durable store of committed offsets.
// Lock order: lmu -> mu.
type offsetLog struct {
	dir          string
	compactBytes int64
	lg           *slog.Logger

	// lmu guards the log pointer: appends and syncs hold it shared,
	// compaction and Close exclusively.
	lmu sync.RWMutex
	log *storage.Log

	mu      sync.Mutex
	groups  map[string]map[TP]*offsetEntry
	seq     uint64
	records int64 // records in the log (live or not)
}

var errOffsetsClosed = errors.New("group: offsets log closed")

func openOffsetLog(dir string, compactBytes int64, lg *slog.Logger) (*offsetLog, error) {
	if err := finishCompaction(dir); err != nil {
		return nil, err
	}
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Logger: lg})
	if err != nil {
		return nil, fmt.Errorf("group: open offsets log: %w", err)
	}
	o := &offsetLog{dir: dir, compactBytes: compactBytes, lg: lg, log: l, groups: map[string]map[TP]*offsetEntry{}}
	if err := o.replay(); err != nil {
		l.Close()
		return nil, err
	}
	return o, nil
}

// finishCompaction completes or discards a compaction cut by a crash.
func finishCompaction(dir string) error {
	if err := storage.FinishSwap(dir); err != nil {
		return fmt.Errorf("group: finish offsets compaction: %w", err)
	}
	return nil
}

func (o *offsetLog) replay() error {
	l := o.log
	buf := make([]byte, 0, 1<<20)
	var err error
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		buf, err = l.Read(off, 1<<20, l.LogEndOffset(), buf[:0])
		if err != nil {
			return fmt.Errorf("group: replay offsets at %d: %w", off, err)
		}
		if len(buf) == 0 {
			break
		}
		err = storage.SplitBatches(buf, func(b []byte) error {
			h, _ := storage.ParseBatchHeader(b)
			off = h.NextOffset()
			return storage.DecodeRecords(b, nil, func(r *kmsg.Record) error {
				g, tp, ok := decodeKey(r.Key)
				if !ok {
					return nil // not ours (a newer record type): skip
				}
				e := &offsetEntry{deleted: r.Value == nil}
				if !e.deleted {
					var v offsetValue
					if err := json.Unmarshal(r.Value, &v); err != nil {
						return fmt.Errorf("group: offsets record at %d: %w", h.BaseOffset+int64(r.OffsetDelta), err)
					}
					e.Offset = Offset{Offset: v.O, LeaderEpoch: v.E, Metadata: v.M, CommitMs: v.T}
				}
				o.seq++
				e.seq = o.seq
				o.records++
				o.applyLocked(g, tp, e)
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func encodeKey(group string, tp TP) []byte {
	k := make([]byte, 0, 1+2+len(group)+2+len(tp.Topic)+4)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint16(k, uint16(len(group)))
	k = append(k, group...)
	k = binary.BigEndian.AppendUint16(k, uint16(len(tp.Topic)))
	k = append(k, tp.Topic...)
	return binary.BigEndian.AppendUint32(k, uint32(tp.Partition))
}

func decodeKey(k []byte) (string, TP, bool) {
	if len(k) < 3 || k[0] != 0 {
		return "", TP{}, false
	}
	k = k[1:]
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n+2 {
		return "", TP{}, false
	}
	g := string(k[2 : 2+n])
	k = k[2+n:]
	n = int(binary.BigEndian.Uint16(k))
	if len(k) != 2+n+4 {
		return "", TP{}, false
	}
	return g, TP{Topic: string(k[2 : 2+n]), Partition: int32(binary.BigEndian.Uint32(k[2+n:]))}, true
}

func (o *offsetLog) applyLocked(group string, tp TP, e *offsetEntry) {
	m := o.groups[group]
	if m == nil {
		m = map[TP]*offsetEntry{}
		o.groups[group] = m
	}
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

// write appends the changes as one batch, fsyncs and then applies them.
func (o *offsetLog) write(changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	recs := make([]kmsg.Record, len(changes))
	for i, c := range changes {
		recs[i].Key = encodeKey(c.group, c.tp)
		if !c.del {
			v, _ := json.Marshal(offsetValue{O: c.off.Offset, E: c.off.LeaderEpoch, M: c.off.Metadata, T: c.off.CommitMs})
			recs[i].Value = v
		}
	}
	batch := storage.EncodeBatch(time.Now().UnixMilli(), recs)
	o.lmu.RLock()
	if o.log == nil {
		o.lmu.RUnlock()
		return errOffsetsClosed
	}
	o.mu.Lock()
	if _, err := o.log.Append(batch); err != nil {
		o.mu.Unlock()
		o.lmu.RUnlock()
		return fmt.Errorf("group: append offsets: %w", err)
	}
	first := o.seq + 1
	o.seq += uint64(len(changes))
	o.records += int64(len(changes))
	o.mu.Unlock()
	_, err := o.log.Sync()
	o.lmu.RUnlock()
	if err != nil {
		return fmt.Errorf("group: sync offsets: %w", err)
	}
	o.mu.Lock()
	for i, c := range changes {
		o.applyLocked(c.group, c.tp, &offsetEntry{Offset: c.off, seq: first + uint64(i), deleted: c.del})
	}
	o.mu.Unlock()
	o.maybeCompact()
	return nil
}

// fetch returns the live offsets of group; tps nil means all.
func (o *offsetLog) fetch(group string, tps []TP) map[TP]Offset {
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
func (o *offsetLog) groupsWithOffsets() []string {
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

func (o *offsetLog) liveLocked() int64 {
	var n int64
	for _, m := range o.groups {
		for _, e := range m {
			if !e.deleted {
				n++
			}
		}
	}
	return n
}

func (o *offsetLog) maybeCompact() {
	o.lmu.RLock()
	l := o.log
	big := l != nil && l.Size() > o.compactBytes
	o.lmu.RUnlock()
	if !big {
		return
	}
	o.mu.Lock()
	worth := o.records > 2*o.liveLocked()
	o.mu.Unlock()
	if !worth {
		return
	}
	if err := o.compact(); err != nil {
		o.lg.Error("offsets log compaction failed", "err", err)
	}
}

// compact rewrites the log with only the live offsets (see the file comment).
func (o *offsetLog) compact() error {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	if o.log == nil {
		return errOffsetsClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	tmp := o.dir + storage.CompactSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	nl, err := storage.Open(tmp, storage.Options{SegmentBytes: 64 << 20, Logger: o.lg})
	if err != nil {
		return fmt.Errorf("group: open compacted log: %w", err)
	}
	var recs []kmsg.Record
	var live int64
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		_, err := nl.Append(storage.EncodeBatch(time.Now().UnixMilli(), recs))
		recs = recs[:0]
		return err
	}
	for g, m := range o.groups {
		for tp, e := range m {
			if e.deleted {
				delete(m, tp)
				continue
			}
			v, _ := json.Marshal(offsetValue{O: e.Offset.Offset, E: e.LeaderEpoch, M: e.Metadata, T: e.CommitMs})
			recs = append(recs, kmsg.Record{Key: encodeKey(g, tp), Value: v})
			live++
			if len(recs) == 1000 {
				if err := flush(); err != nil {
					nl.Close()
					return fmt.Errorf("group: write compacted log: %w", err)
				}
			}
		}
		if len(m) == 0 {
			delete(o.groups, g)
		}
	}
	if err := flush(); err != nil {
		nl.Close()
		return fmt.Errorf("group: write compacted log: %w", err)
	}
	if _, err := nl.Sync(); err != nil {
		nl.Close()
		return fmt.Errorf("group: sync compacted log: %w", err)
	}
	if err := nl.Close(); err != nil {
		return fmt.Errorf("group: close compacted log: %w", err)
	}
	if err := o.log.Close(); err != nil {
		return fmt.Errorf("group: close offsets log: %w", err)
	}
	o.log = nil
	if err := storage.SwapCompacted(o.dir, nil); err != nil {
		return fmt.Errorf("group: swap offsets log: %w", err)
	}
	l, err := storage.Open(o.dir, storage.Options{SegmentBytes: 64 << 20, Logger: o.lg})
	if err != nil {
		return fmt.Errorf("group: reopen offsets log: %w", err)
	}
	o.log = l
	o.records = live
	o.lg.Info("offsets log compacted", "live_offsets", live)
	return nil
}

func (o *offsetLog) close() error {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	if o.log == nil {
		return nil
	}
	err := o.log.Close()
	o.log = nil
	return err
}
