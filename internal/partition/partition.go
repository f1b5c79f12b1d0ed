package partition

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
)

const (
	// MetaFile names the file holding a partition directory's topic id.
	MetaFile = "partition.metadata"
	// SnapshotFile names the producer-state snapshot written at a clean close.
	SnapshotFile = "producers.snapshot"
	// producerWindow is how many recent batches per producer are remembered
	// for duplicate detection; Kafka clients keep at most 5 in flight.
	producerWindow = 5
)

// Options say which partition a directory holds and how its log is opened.
type Options struct {
	Topic   string
	Index   int32
	TopicID metadata.TopicID
	// Storage configures the log; its Logger is the partition's too.
	Storage storage.Options
}

// state is an open partition: its log plus the state that must change
// atomically with an append: idempotent-producer sequences, open and aborted
// transactions, leader epochs. A Partition holds one while open (handle.go).
type state struct {
	topic   string
	index   int32
	topicID metadata.TopicID
	log     *storage.Log
	epochs  *leaderEpochs // leader_epoch.go
	lg      *slog.Logger

	mu        sync.Mutex // serialises appends and guards producers, ongoing, aborted
	producers map[int64]*producerState
	ongoing   map[int64]int64 // producer id -> first offset of its open transaction (txn.go)
	aborted   []AbortedTxn    // in marker order (txn.go)
	// loaded: LoadProducers ran (the WAL replay runs before it). snapAt
	// is the log end the loaded producers.snapshot covered (-1: none);
	// expired: ExpireProducers forgot a producer since. Close rewrites
	// the snapshot only when it would say something new.
	loaded  bool
	snapAt  int64
	expired bool
	// hwCap is the Partition's replicated high watermark bound
	// (SetHighWatermarkCap; nil or math.MaxInt64: not replicated).
	hwCap *atomic.Int64
}

// Topic is the partition's topic name.
func (p *state) Topic() string { return p.topic }

// Index is the partition's number within its topic.
func (p *state) Index() int32 { return p.index }

// LeaderEpoch is the partition's leader epoch; a single node never changes
// leader, so it stays 0 until clustering bumps it (BumpLeaderEpoch).
func (p *state) LeaderEpoch() int32 { return p.epochs.epoch() }

// HighWatermark is what consumers may read: the durable log end, and on a
// replicated partition's leader no further than every in-sync replica has
// made durable too (the cap the broker sets, SetHighWatermarkCap).
func (p *state) HighWatermark() int64 {
	hw := p.log.DurableOffset()
	if p.hwCap != nil {
		hw = min(hw, p.hwCap.Load())
	}
	return hw
}

type seqBatch struct {
	FirstSeq int32 `json:"f"`
	LastSeq  int32 `json:"l"`
	Base     int64 `json:"b"`
}

type producerState struct {
	Epoch   int16      `json:"e"`
	Batches []seqBatch `json:"batches"` // oldest first, at most producerWindow
	// For DescribeProducers: the max timestamp of the producer's last batch
	// or marker, and whether a transaction marker was written for it.
	LastTs int64 `json:"ts,omitempty"`
	Marker bool  `json:"m,omitempty"`
	// Seen is the broker's clock (Unix ms) at the producer's last write
	// here: producer-id expiration (ExpireProducers) counts from it.
	Seen int64 `json:"seen,omitempty"`
}

type partitionMeta struct {
	TopicID metadata.TopicID `json:"topic_id"`
}

type producerSnapshot struct {
	Offset    int64                    `json:"offset"`
	Producers map[int64]*producerState `json:"producers"`
	Ongoing   map[int64]int64          `json:"ongoing,omitempty"`
	Aborted   []AbortedTxn             `json:"aborted,omitempty"`
}

// snapshotHeader starts a producers.snapshot: the header, the CRC-32C
// (Castagnoli) of the JSON that follows as 8 hex digits, a newline. The
// file is overwritten in place (storage.OverwriteFile), so a crash may
// leave it torn; the checksum makes a torn one read as absent (the log is
// scanned instead). A file without the header is the JSON alone, as
// written atomically by earlier versions.
const snapshotHeader = "chronik-producers-v2 "

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeSnapshot(snap producerSnapshot) []byte {
	raw, _ := json.Marshal(snap)
	out := make([]byte, 0, len(snapshotHeader)+9+len(raw))
	out = append(out, snapshotHeader...)
	out = fmt.Appendf(out, "%08x\n", crc32.Checksum(raw, castagnoli))
	return append(out, raw...)
}

// decodeSnapshot reads either form; ok is false for a torn or damaged
// file.
func decodeSnapshot(b []byte) (snap producerSnapshot, ok bool) {
	if rest, found := bytes.CutPrefix(b, []byte(snapshotHeader)); found {
		if len(rest) < 9 || rest[8] != '\n' {
			return snap, false
		}
		sum, err := strconv.ParseUint(string(rest[:8]), 16, 32)
		if err != nil || uint32(sum) != crc32.Checksum(rest[9:], castagnoli) {
			return snap, false
		}
		b = rest[9:]
	}
	return snap, json.Unmarshal(b, &snap) == nil
}

// claimDir checks dir's partition.metadata against the topic id: a
// directory left by an earlier topic of the same name (another id) is
// removed; haveMeta reports a readable file naming id (an unreadable one,
// written without fsync and torn by a power loss, is never a reason to
// delete data: the caller writes it again).
func claimDir(dir string, id metadata.TopicID, lg *slog.Logger) (haveMeta bool, err error) {
	raw, err := storage.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return false, nil
	}
	var pm partitionMeta
	switch {
	case json.Unmarshal(raw, &pm) != nil:
		lg.Warn("partition.metadata unreadable; writing it again", "dir", dir)
		return false, nil
	case pm.TopicID != id:
		lg.Warn("partition directory belongs to an older topic of the same name; removing it", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("partition: remove stale %s: %w", dir, err)
		}
		return false, nil
	}
	return true, nil
}

// openState opens (or creates) a partition's directory and log, without
// producer state: the WAL replay may append to the log first, then
// LoadProducers runs before the first use. A directory left by an earlier
// topic of the same name (different topic id) is wiped first.
func openState(dir string, o Options) (*state, error) {
	lg := o.Storage.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if o.Storage.Created {
		// Create made the directory, its metadata and its empty files in
		// this process: an empty log, no producers, epoch 0 from 0.
		l, err := storage.Open(dir, o.Storage)
		if err != nil {
			return nil, fmt.Errorf("partition: open %s-%d: %w", o.Topic, o.Index, err)
		}
		st := newState(o, l, newLeaderEpochs(dir, 0), lg)
		st.loaded = true
		return st, nil
	}
	haveMeta, err := claimDir(dir, o.TopicID, lg)
	if err != nil {
		return nil, err
	}
	l, err := storage.Open(dir, o.Storage)
	if err != nil {
		return nil, fmt.Errorf("partition: open %s-%d: %w", o.Topic, o.Index, err)
	}
	if !haveMeta {
		if err := writeMeta(dir, o.TopicID, true); err != nil {
			l.Close()
			return nil, err
		}
	}
	// The WAL replay (after Open) may extend the log end, so nothing is
	// trimmed here: an epoch entry is only beyond the end after clustering
	// truncates a log, which rewrites the checkpoint itself.
	epochs, err := loadLeaderEpochs(dir, l.LogStartOffset(), math.MaxInt64, lg)
	if err != nil {
		l.Close()
		return nil, err
	}
	// A crash after the log start moved may have left the checkpoint
	// untrimmed (Kafka also trims it when loading a log).
	if err := epochs.truncateFromStart(l.LogStartOffset()); err != nil {
		lg.Warn("cannot trim leader epoch checkpoint to the log start", "err", err)
	}
	return newState(o, l, epochs, lg), nil
}

// newState is an open partition's state before its producer state is
// loaded.
func newState(o Options, l *storage.Log, epochs *leaderEpochs, lg *slog.Logger) *state {
	return &state{topic: o.Topic, index: o.Index, topicID: o.TopicID, log: l, epochs: epochs, lg: lg, producers: map[int64]*producerState{}, snapAt: -1}
}

// writeMeta writes dir's partition.metadata: atomically and durably if
// durable, else with one plain write (Create).
func writeMeta(dir string, id metadata.TopicID, durable bool) error {
	path := filepath.Join(dir, MetaFile)
	raw, _ := json.Marshal(partitionMeta{TopicID: id})
	write := storage.WriteFileAtomic
	if !durable {
		write = func(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
	}
	if err := write(path, raw); err != nil {
		return fmt.Errorf("partition: write %s: %w", path, err)
	}
	return nil
}

// LoadProducers restores idempotent-producer state: the snapshot written at
// the last clean close, then every batch after it (all batches if none).
func (p *state) LoadProducers() error {
	if p.loaded {
		return nil
	}
	from := p.log.LogStartOffset()
	path := filepath.Join(p.log.Dir(), SnapshotFile)
	if raw, err := storage.ReadFile(path); err == nil {
		if snap, ok := decodeSnapshot(raw); ok && snap.Offset <= p.log.LogEndOffset() && snap.Offset >= from {
			for pid, st := range snap.Producers {
				// Check what we read. An empty window is an epoch
				// set by a transaction marker (checkSequence expects
				// sequence 0 next).
				if st != nil && len(st.Batches) <= producerWindow {
					p.producers[pid] = st
				}
			}
			p.ongoing, p.aborted = snap.Ongoing, snap.Aborted
			from = snap.Offset
			p.snapAt = snap.Offset
		}
	}
	var markers []storage.BatchHeader
	err := p.log.ScanBatches(from, func(h storage.BatchHeader) error {
		switch {
		case h.ProducerID < 0 || h.BaseOffset < from:
		case h.IsControl():
			markers = append(markers, h)
		default:
			p.recordBatch(h.ProducerID, h.ProducerEpoch, h.BaseSequence, addSequence(h.BaseSequence, h.LastOffsetDelta), h.BaseOffset)
			p.producers[h.ProducerID].LastTs = h.MaxTimestamp
			if h.IsTransactional() {
				markers = append(markers, h)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.replayTxns(markers); err != nil {
		return err
	}
	// Producers replayed from the log (or from a snapshot without Seen)
	// count as seen now: expiration may start late, never early.
	now := time.Now().UnixMilli()
	for _, st := range p.producers {
		if st.Seen == 0 {
			st.Seen = now
		}
	}
	p.loaded = true
	return nil
}

// replayTxns rebuilds open and aborted transactions from the transactional
// batches and markers found after the snapshot, in log order.
func (p *state) replayTxns(hs []storage.BatchHeader) error {
	for i := range hs {
		h := &hs[i]
		if !h.IsControl() {
			p.noteTxnBatch(h, h.BaseOffset)
			continue
		}
		raw, err := p.log.Read(h.BaseOffset, h.Size(), h.NextOffset(), nil)
		if err != nil {
			return fmt.Errorf("partition: read marker at %d: %w", h.BaseOffset, err)
		}
		var commit bool
		err = storage.SplitBatches(raw, func(b []byte) error {
			var err error
			commit, err = markerIsCommit(b)
			return err
		})
		if err != nil {
			return fmt.Errorf("partition: marker at %d: %w", h.BaseOffset, err)
		}
		p.applyMarker(h.ProducerID, h.ProducerEpoch, commit, h.BaseOffset)
		p.noteMarker(h.ProducerID, h.MaxTimestamp)
	}
	return nil
}

// Close closes the log (syncing it) and writes the producer snapshot,
// unless the snapshot on disk says the same already (nothing appended or
// expired since it was loaded) or the producers were never loaded (a
// snapshot of nothing would be wrong; the old one plus the log is right).
func (p *state) Close() error { return p.close(nil) }

// close is Close, with the durable writes left to b if it is not nil
// (storage.CloseBatch).
func (p *state) close(b *storage.CloseBatch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := p.log.LogEndOffset()
	// No snapshot is needed for an empty log (LoadProducers finds
	// nothing to scan either).
	unchanged := p.log.Marked() && !p.expired && (p.snapAt == end || (p.snapAt < 0 && end == p.log.LogStartOffset()))
	var err error
	if b == nil {
		err = p.log.Close()
	} else {
		err = p.log.CloseIn(b)
	}
	if err == nil && p.loaded && !unchanged {
		// Written in place after the log is durable (Close synced it; a
		// batch writes it after its syncfs): no new file per close.
		raw := encodeSnapshot(producerSnapshot{Offset: p.log.LogEndOffset(), Producers: p.producers, Ongoing: p.ongoing, Aborted: p.aborted})
		path := filepath.Join(p.log.Dir(), SnapshotFile)
		if b == nil {
			err = storage.OverwriteFile(path, raw, true)
		} else {
			b.Overwrite(path, raw)
		}
	}
	return err
}

// Delete removes the partition's files (its topic was deleted); no append
// is in progress meanwhile.
func (p *state) Delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Delete()
}

// recordBatch remembers an appended idempotent batch. Caller holds p.mu.
func (p *state) recordBatch(pid int64, epoch int16, first, last int32, base int64) {
	st := p.producers[pid]
	if st == nil || st.Epoch != epoch {
		st = &producerState{Epoch: epoch}
		p.producers[pid] = st
	}
	if len(st.Batches) == producerWindow {
		copy(st.Batches, st.Batches[1:])
		st.Batches = st.Batches[:producerWindow-1]
	}
	st.Batches = append(st.Batches, seqBatch{FirstSeq: first, LastSeq: last, Base: base})
}

// noteMarker records a transaction marker of pid written at ts (after
// applyMarker). Caller holds p.mu.
func (p *state) noteMarker(pid int64, ts int64) {
	if st := p.producers[pid]; st != nil {
		st.LastTs, st.Marker = ts, true
	}
}

// ExpireProducers forgets the producers that have not written here for at
// least ttl (producer.id.expiration.ms), except one with a transaction open
// in this partition, and returns how many it forgot. A forgotten producer
// that writes again starting at sequence 0 (a new producer id, or a new
// epoch) is accepted; one that continues its old sequence is answered
// UNKNOWN_PRODUCER_ID, which clients handle by resetting their sequence
// (KIP-360), as Kafka does.
func (p *state) ExpireProducers(nowMs int64, ttl time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for pid, st := range p.producers {
		if nowMs-st.Seen < ttl.Milliseconds() {
			continue
		}
		if _, open := p.ongoing[pid]; open {
			continue
		}
		delete(p.producers, pid)
		n++
	}
	p.expired = p.expired || n > 0
	return n
}

// ProducerInfo is one producer's state as DescribeProducers shows it.
type ProducerInfo struct {
	PID      int64
	Epoch    int16
	LastSeq  int32 // -1: no batch in this epoch yet
	LastTs   int64 // -1: unknown
	CoordEp  int32 // -1 until a transaction marker was written
	TxnStart int64 // first offset of its open transaction, -1 if none
}

// ActiveProducers returns the producers this partition keeps state for
// (every idempotent or transactional producer that wrote to it), sorted by
// producer id.
func (p *state) ActiveProducers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for pid, st := range p.producers {
		pi := ProducerInfo{PID: pid, Epoch: st.Epoch, LastSeq: -1, LastTs: -1, CoordEp: -1, TxnStart: -1}
		if n := len(st.Batches); n > 0 {
			pi.LastSeq = st.Batches[n-1].LastSeq
		}
		if st.LastTs > 0 {
			pi.LastTs = st.LastTs
		}
		if st.Marker {
			pi.CoordEp = 0 // a single node's coordinator epoch (markers carry 0)
		}
		if first, ok := p.ongoing[pid]; ok {
			pi.TxnStart = first
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// checkSequence applies Kafka's idempotence rules to a batch about to be
// appended. dup >= 0 is the base offset of an identical batch already in the
// log (answer success, do not append). Caller holds p.mu.
func (p *state) checkSequence(h *storage.BatchHeader) (dup int64, err error) {
	if h.ProducerID < 0 {
		return -1, nil
	}
	first, last := h.BaseSequence, addSequence(h.BaseSequence, h.LastOffsetDelta)
	st := p.producers[h.ProducerID]
	switch {
	case st == nil:
		if first != 0 {
			// No state: a producer id this partition never saw, or one
			// whose state expired. Kafka's answer, which clients recover
			// from by resetting the sequence.
			return -1, ErrUnknownProducerID
		}
		return -1, nil
	case h.ProducerEpoch < st.Epoch:
		return -1, ErrInvalidProducerEpoch
	case h.ProducerEpoch > st.Epoch:
		if first != 0 {
			return -1, ErrOutOfOrderSequence
		}
		return -1, nil
	}
	if len(st.Batches) == 0 { // epoch set by a transaction marker
		if first != 0 {
			return -1, ErrOutOfOrderSequence
		}
		return -1, nil
	}
	for _, sb := range st.Batches {
		if sb.FirstSeq == first && sb.LastSeq == last {
			return sb.Base, nil
		}
	}
	want := addSequence(st.Batches[len(st.Batches)-1].LastSeq, 1)
	if first != want {
		return -1, ErrOutOfOrderSequence
	}
	return -1, nil
}

// addSequence returns seq+n with Kafka's wrap-around: sequences run from 0 to
// MaxInt32 and then start again at 0 (DefaultRecordBatch.incrementSequence),
// also in the middle of a batch. Plain int32 addition would wrap to a
// negative number instead.
func addSequence(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// AppendResult is one partition's outcome of a produce.
type AppendResult struct {
	Base    int64 // -1 on error
	LastEnd int64 // offset after the last record written (or of the duplicate)
	Err     error // ErrUnknownProducerID, ErrInvalidProducerEpoch, ErrOutOfOrderSequence, ErrStorage
	Batches int
	Bytes   int64 // appended (not duplicate) bytes
	Records int64 // appended (not duplicate) records
	// LogStart is the log start offset after the append.
	LogStart int64
}

// AppendBatches validates sequences and appends batches (already checked for
// CRC and format) in order. The first failing batch stops the partition's
// append; earlier batches of the same request stay (Kafka rejects a request
// with more than one batch per partition at v3+ anyway for idempotent
// producers).
func (p *state) AppendBatches(batches [][]byte, headers []storage.BatchHeader) AppendResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := AppendResult{Base: -1}
	var nowMs int64
	for i, raw := range batches {
		h := &headers[i]
		dup, err := p.checkSequence(h)
		if err != nil {
			res.Err = err
			return res
		}
		if dup >= 0 {
			if res.Base < 0 {
				res.Base = dup
			}
			res.LastEnd = dup + int64(h.LastOffsetDelta) + 1
			continue
		}
		base, err := p.appendStamped(raw)
		if err != nil {
			res.Err = fmt.Errorf("%w: append to %s-%d: %w", ErrStorage, p.topic, p.index, err)
			return res
		}
		if res.Base < 0 {
			res.Base = base
		}
		res.LastEnd = base + int64(h.LastOffsetDelta) + 1
		res.Batches++
		res.Records += int64(h.RecordCount)
		res.Bytes += int64(len(raw))
		p.noteTxnBatch(h, base)
		if h.ProducerID >= 0 {
			p.recordBatch(h.ProducerID, h.ProducerEpoch, h.BaseSequence, addSequence(h.BaseSequence, h.LastOffsetDelta), base)
			if nowMs == 0 {
				nowMs = time.Now().UnixMilli()
			}
			st := p.producers[h.ProducerID]
			st.LastTs, st.Seen = h.MaxTimestamp, nowMs
		}
	}
	return res
}

// Append appends one batch as is, with no sequence checks, stamped with the
// leader epoch under the partition lock: the coordinators' writes to their
// internal topics.
func (p *state) Append(raw []byte) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, err := p.appendStamped(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: append to %s-%d: %w", ErrStorage, p.topic, p.index, err)
	}
	return off, nil
}

// appendStamped stamps raw with the current leader epoch (outside the CRC),
// noting where an epoch starts before the batch is in the log, and appends
// it. Caller holds p.mu.
func (p *state) appendStamped(raw []byte) (int64, error) {
	epoch, err := p.epochs.assign(p.log.LogEndOffset())
	if err != nil {
		return 0, err
	}
	storage.SetLeaderEpoch(raw, epoch)
	return p.log.Append(raw)
}

// ErrReplicaBatch: a batch fetched from the leader starts below the
// follower's log end without being a batch it already holds, or its
// offsets leave the int64 range.
var ErrReplicaBatch = errors.New("partition: replica batch overlaps the log end")

// AppendReplica appends batches fetched from the partition's leader as they
// are (a follower's copy: offsets, leader epochs and producer fields kept)
// and updates the producer and transaction state as the leader's appends
// did. Batches wholly below the log end (fetched twice) are skipped. It
// returns the batches and bytes appended.
func (p *state) AppendReplica(batches [][]byte, headers []storage.BatchHeader) (int, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, bytes := 0, int64(0)
	now := time.Now().UnixMilli()
	for i, raw := range batches {
		h := &headers[i]
		end := p.log.LogEndOffset()
		if h.NextOffset() <= end {
			continue
		}
		if h.BaseOffset < end || h.LastOffsetDelta < 0 || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)-1 {
			return n, bytes, fmt.Errorf("%w: %s-%d log end %d, batch %d-%d", ErrReplicaBatch, p.topic, p.index, end, h.BaseOffset, h.LastOffset())
		}
		if h.LeaderEpoch > p.epochs.epoch() {
			p.epochs.bump(h.LeaderEpoch)
		}
		if _, err := p.epochs.assign(h.BaseOffset); err != nil {
			return n, bytes, fmt.Errorf("%w: %s-%d: %w", ErrStorage, p.topic, p.index, err)
		}
		if _, err := p.log.AppendAt(raw); err != nil {
			return n, bytes, fmt.Errorf("%w: append replica batch to %s-%d: %w", ErrStorage, p.topic, p.index, err)
		}
		n++
		bytes += int64(len(raw))
		if h.IsControl() {
			commit, err := markerIsCommit(raw)
			if err != nil {
				p.lg.Warn("replica marker unreadable; transaction state may be stale", "offset", h.BaseOffset, "err", err)
				continue
			}
			p.applyMarker(h.ProducerID, h.ProducerEpoch, commit, h.BaseOffset)
			p.noteMarker(h.ProducerID, h.MaxTimestamp)
			continue
		}
		p.noteTxnBatch(h, h.BaseOffset)
		if h.ProducerID >= 0 {
			p.recordBatch(h.ProducerID, h.ProducerEpoch, h.BaseSequence, addSequence(h.BaseSequence, h.LastOffsetDelta), h.BaseOffset)
			st := p.producers[h.ProducerID]
			st.LastTs, st.Seen = h.MaxTimestamp, now
		}
	}
	return n, bytes, nil
}
