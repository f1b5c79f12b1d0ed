package storage

// Log compaction (cleanup.policy=compact): see the "Compaction" section of
// doc.go for the format and the crash-safe swap.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	cleanedSuffix        = ".cleaned" // <base>.log.cleaned: being written, deleted on Open
	swapSuffix           = ".swap"    // <base>.log.swap: complete and fsynced, renamed over <base>.log on Open
	cleanCheckpointName  = "cleaner-offset"
	cleanerMagic         = "CHRNKCO1"
	cleanCheckpointSize  = 8 + 8 + 4
	defaultCleanMaxKeys  = 1 << 20
	defaultCleanMaxBytes = 256 << 20
)

// errSegmentGone: retention or Truncate took the segment while it was being
// cleaned; the pass stops and the next one starts over.
var errSegmentGone = errors.New("storage: segment changed while being cleaned")

// cleanHook, when set by a test, is called after each step of a segment
// swap; an error stops the clean right there, leaving the files as a crash
// at that point would.
var cleanHook func(step string) error

func cleanStep(step string) error {
	if cleanHook == nil {
		return nil
	}
	return cleanHook(step)
}

// CleanOptions configure one compaction pass.
type CleanOptions struct {
	Now time.Time
	// UpTo: only segments wholly below this offset (the high watermark) are
	// cleaned.
	UpTo int64
	// MinLagMs: segments holding a batch whose max timestamp is younger
	// than this are not cleaned (min.compaction.lag.ms).
	MinLagMs int64
	// DeleteRetentionMs (delete.retention.ms): how long a tombstone that is
	// the latest value of its key stays after its segment was cleaned.
	// Kafka's rule (KIP-534): the first pass that keeps a tombstone stamps
	// its batch with the delete horizon Now + DeleteRetentionMs
	// (AttrDeleteHorizon, the base timestamp); a pass at or after the
	// horizon removes it.
	DeleteRetentionMs int64
	// ProducerLastOffsets maps each producer id the partition keeps state
	// for to the last offset of its last data batch. That batch keeps its
	// header even when all its records go (Kafka's
	// BatchRetention.RETAIN_EMPTY), so the producer's epoch and last
	// sequence survive in the log for a rebuild of producer state; other
	// emptied batches are dropped.
	ProducerLastOffsets map[int64]int64
	// MinDirtyRatio: the pass runs only if dirty bytes / cleanable bytes
	// reaches this (min.cleanable.dirty.ratio).
	MinDirtyRatio float64
	// MaxBytes bounds the segment bytes rewritten in one pass (at least one
	// segment is). 0 means 256 MiB.
	MaxBytes int64
	// MaxKeys bounds the key map; segments beyond it wait. 0 means 1Mi.
	MaxKeys int
}

// CleanResult reports what a pass did.
type CleanResult struct {
	Ran            bool  // the dirty ratio was reached and segments were examined
	Segments       int   // segments rewritten
	BytesReclaimed int64 // log bytes freed
	RecordsRemoved int64
}

// DirtyRatio returns the dirty bytes (cleanable segments at or above the
// cleaned offset) over all cleanable bytes, and the number of cleanable
// leading segments: sealed, indexed (fsynced), below upTo and older than the
// lag.
func (l *Log) DirtyRatio(now time.Time, upTo, minLagMs int64) (ratio float64, cleanable int) {
	ratio, segs := l.cleanable(now, upTo, minLagMs)
	return ratio, len(segs)
}

// cleanable returns the dirty ratio and the cleanable leading segments.
func (l *Log) cleanable(now time.Time, upTo, minLagMs int64) (float64, []*segment) {
	// persisted is written under syncMu, next and active under mu.
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := *l.segs.Load()
	var dirty, total int64
	cleanedTo := l.cleanedTo.Load()
	cleanable := 0
	for _, s := range segs {
		ok := s != l.active && s.persisted && s.next <= upTo
		ts := s.maxTS.Load()
		if !ok || (ts != noTimestamp && now.UnixMilli()-ts < minLagMs) {
			break
		}
		size := s.size.Load()
		total += size
		if s.base >= cleanedTo {
			dirty += size
		}
		cleanable++
	}
	if total == 0 {
		return 0, nil
	}
	return float64(dirty) / float64(total), slices.Clone(segs[:cleanable])
}

// Clean compacts the cleanable leading segments when their dirty ratio is
// reached: only the latest record of each key survives, with its original
// offset, tombstones go DeleteRetentionMs after a pass first kept them,
// records without a key go (as in Kafka), a producer's last batch keeps its
// header when emptied, and transactional and control batches are copied
// whole. The active segment is never touched.
func (l *Log) Clean(o CleanOptions) (CleanResult, error) {
	var res CleanResult
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultCleanMaxBytes
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = defaultCleanMaxKeys
	}
	ratio, segs := l.cleanable(o.Now, o.UpTo, o.MinLagMs)
	if len(segs) == 0 || ratio <= 0 || ratio < o.MinDirtyRatio {
		return res, nil
	}
	keys, n, err := l.buildKeyMap(segs, o.MaxKeys)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil // retention deleted a segment meanwhile: next pass
	}
	if err != nil || n == 0 {
		return res, err
	}
	res.Ran = true
	var rewritten int64
	for _, s := range segs[:n] {
		if rewritten >= o.MaxBytes {
			break
		}
		before := s.size.Load()
		removed, after, swapped, err := l.cleanSegment(s, keys, o)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errSegmentGone) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		rewritten += before
		if swapped {
			res.Segments++
			res.RecordsRemoved += removed
			res.BytesReclaimed += before - after
		}
	}
	return res, nil
}

// buildKeyMap maps every key of the data records in segs to the offset of
// its latest record. It returns how many leading segments the map covers:
// a segment that would take it past maxKeys is left for a later pass.
func (l *Log) buildKeyMap(segs []*segment, maxKeys int) (map[string]int64, int, error) {
	keys := make(map[string]int64)
	for i, s := range segs {
		if l.closed.Load() {
			return nil, 0, ErrClosed
		}
		added := 0
		err := l.eachBatch(s, func(b []byte, h *BatchHeader) error {
			if h.IsTransactional() || h.IsControl() {
				return nil
			}
			return eachRecord(b, h, func(raw []byte, r *kmsg.Record) error {
				if r.Key == nil {
					return nil
				}
				if _, ok := keys[string(r.Key)]; !ok {
					added++
				}
				keys[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				return nil
			})
		})
		if err != nil {
			return nil, 0, err
		}
		if len(keys) > maxKeys && i > 0 {
			// The map is too big with this segment; later entries for keys
			// of earlier segments only make those survive, never lose data.
			return keys, i, nil
		}
	}
	return keys, len(segs), nil
}

// eachBatch calls fn with every batch of the sealed segment s, read whole
// and CRC-checked (a corrupt batch must not be rewritten with a fresh CRC).
// It reads through its own file descriptor, so it holds no log lock while
// it works: retention may delete the segment meanwhile (the open then fails
// with os.ErrNotExist, or the descriptor keeps the old inode readable), and
// readers never queue behind a long cleaner read.
func (l *Log) eachBatch(s *segment, fn func(b []byte, h *BatchHeader) error) error {
	p := s.path(logSuffix)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", p, err)
	}
	defer f.Close()
	limit := s.size.Load()
	var buf []byte
	for pos := int64(0); pos < limit; {
		if limit-pos < BatchHeaderSize {
			return fmt.Errorf("storage: %s: %d trailing bytes at position %d", p, limit-pos, pos)
		}
		buf = slices.Grow(buf[:0], BatchHeaderSize)[:BatchHeaderSize]
		if _, err := f.ReadAt(buf, pos); err != nil {
			return fmt.Errorf("storage: read %s at %d: %w", p, pos, err)
		}
		h, _ := ParseBatchHeader(buf)
		size := int64(h.Size())
		if size < BatchHeaderSize || size > limit-pos {
			return fmt.Errorf("storage: %s: bad batch header at position %d", p, pos)
		}
		buf = slices.Grow(buf, int(size))[:size]
		if _, err := f.ReadAt(buf, pos); err != nil {
			return fmt.Errorf("storage: read %s at %d: %w", p, pos, err)
		}
		if crc32.Checksum(buf[offAttributes:], castagnoli) != h.CRC {
			return fmt.Errorf("storage: %s: batch at offset %d: %w", p, h.BaseOffset, ErrBatchCRC)
		}
		if err := fn(buf, &h); err != nil {
			return err
		}
		pos += size
	}
	return nil
}

// eachRecord decodes the records of one batch and passes each with its raw
// bytes (length prefix included), which point into b or into its
// decompressed records (a fresh buffer) and stay valid as long as b does.
func eachRecord(b []byte, h *BatchHeader, fn func(raw []byte, r *kmsg.Record) error) error {
	body, err := Decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return fmt.Errorf("storage: batch at offset %d: %w", h.BaseOffset, err)
	}
	var r kmsg.Record
	for i := int32(0); i < h.RecordCount; i++ {
		n, w := varint(body)
		if w <= 0 || n < 0 || int(n) > len(body)-w {
			return fmt.Errorf("%w: batch at offset %d record %d", ErrRecordTruncated, h.BaseOffset, i)
		}
		raw := body[:w+int(n)]
		if err := r.ReadFrom(raw); err != nil {
			return fmt.Errorf("%w: batch at offset %d record %d", ErrRecordTruncated, h.BaseOffset, i)
		}
		if err := fn(raw, &r); err != nil {
			return err
		}
		body = body[w+int(n):]
	}
	return nil
}

// keptRecord is a record that survives compaction: its raw bytes (length
// prefix included) and its timestamp.
type keptRecord struct {
	raw []byte
	ts  int64
}

// filterBatch appends to dst the cleaned form of batch b and reports the
// records removed and whether the result differs from b, following Kafka's
// Cleaner and MemoryRecords.filterTo:
//
//   - a record survives if it is the latest of its key; a tombstone only
//     until the delete horizon of its batch (none yet: it survives);
//   - a batch keeping tombstones that has no horizon yet is stamped with
//     one: AttrDeleteHorizon, base timestamp Now + DeleteRetentionMs, record
//     timestamp deltas re-encoded against it (record timestamps unchanged);
//   - a batch with nothing to change is b itself; otherwise the surviving
//     records, byte for byte when the base timestamp stays, in a new
//     uncompressed batch with the same base offset, last offset delta, max
//     timestamp, producer id, epoch and base sequence, so offsets and the
//     producer's sequence range do not move;
//   - a batch left without records is dropped, unless it is its producer's
//     last data batch (ProducerLastOffsets): then its header stays with
//     zero records (Kafka's DefaultRecordBatch.writeEmptyHeader), which is
//     also how an earlier pass's empty batch stays until the producer has
//     written a later one.
//
// Transactional and control batches are copied unchanged.
func filterBatch(dst, b []byte, h *BatchHeader, keys map[string]int64, o CleanOptions) ([]byte, int64, bool, error) {
	if h.IsTransactional() || h.IsControl() {
		return append(dst, b...), 0, false, nil
	}
	nowMs := o.Now.UnixMilli()
	horizon, hasHorizon := h.DeleteHorizon()
	var kept []keptRecord
	var removed int64
	tombstones := false
	err := eachRecord(b, h, func(raw []byte, r *kmsg.Record) error {
		off := h.BaseOffset + int64(r.OffsetDelta)
		latest, ok := keys[string(r.Key)]
		keep := r.Key != nil && ok && latest == off && (r.Value != nil || !hasHorizon || nowMs < horizon)
		if !keep {
			removed++
			return nil
		}
		ts := h.BaseTimestamp + r.TimestampDelta64
		if h.Attributes&AttrTimestampType != 0 {
			ts = h.MaxTimestamp
		}
		kept = append(kept, keptRecord{raw: raw, ts: ts})
		tombstones = tombstones || r.Value == nil
		return nil
	})
	if err != nil {
		return dst, 0, false, err
	}
	stamp := tombstones && !hasHorizon
	switch {
	case len(kept) == 0:
		last, ok := o.ProducerLastOffsets[h.ProducerID]
		if h.ProducerID < 0 || !ok || last != h.LastOffset() {
			return dst, removed, true, nil
		}
		if h.RecordCount == 0 {
			return append(dst, b...), 0, false, nil // kept empty by an earlier pass
		}
		return appendEmptyBatch(dst, h), removed, true, nil
	case removed == 0 && !stamp:
		return append(dst, b...), 0, false, nil
	}
	start := len(dst)
	dst = append(dst, b[:BatchHeaderSize]...)
	attrs, base := h.Attributes&^AttrCompressionMask, h.BaseTimestamp
	if stamp {
		attrs |= AttrDeleteHorizon
		base = nowMs + min(o.DeleteRetentionMs, math.MaxInt64-nowMs)
	}
	for _, k := range kept {
		if !stamp {
			dst = append(dst, k.raw...)
			continue
		}
		if dst, err = withTimestampDelta(dst, k.raw, k.ts-base); err != nil {
			return dst[:start], 0, false, fmt.Errorf("storage: batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	out := dst[start:]
	be := binary.BigEndian
	be.PutUint32(out[offBatchLength:], uint32(len(out)-batchLengthOverhead))
	be.PutUint16(out[offAttributes:], uint16(attrs))
	be.PutUint64(out[offBaseTimestamp:], uint64(base))
	be.PutUint32(out[offRecordCount:], uint32(len(kept)))
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return dst, removed, true, nil
}

// appendEmptyBatch appends the header of h with no records, as Kafka's
// DefaultRecordBatch.writeEmptyHeader writes it: same offsets, producer
// fields, leader epoch and max timestamp; no compression, no base
// timestamp (-1), only the timestamp type, transactional and control bits.
func appendEmptyBatch(dst []byte, h *BatchHeader) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, BatchHeaderSize)...)
	out := dst[start:]
	be := binary.BigEndian
	be.PutUint64(out[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(out[offBatchLength:], BatchHeaderSize-batchLengthOverhead)
	be.PutUint32(out[offLeaderEpoch:], uint32(h.LeaderEpoch))
	out[offMagic] = 2
	be.PutUint16(out[offAttributes:], uint16(h.Attributes&(AttrTimestampType|AttrTransactional|AttrControl)))
	be.PutUint32(out[offLastDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(out[offBaseTimestamp:], math.MaxUint64) // -1
	be.PutUint64(out[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(out[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(out[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(out[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(out[offRecordCount:], 0)
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return dst
}

// withTimestampDelta appends the record raw (length prefix included) with
// its timestamp delta replaced by delta; every other byte is kept. Record
// layout: length varint, attributes int8, timestamp delta varlong, rest.
func withTimestampDelta(dst, raw []byte, delta int64) ([]byte, error) {
	_, w := varint(raw)
	if w <= 0 || len(raw) < w+1 {
		return dst, ErrRecordTruncated
	}
	body := raw[w:]
	_, tw := varint(body[1:])
	if tw <= 0 {
		return dst, ErrRecordTruncated
	}
	rest := body[1+tw:]
	var ts [binary.MaxVarintLen64]byte
	n := binary.PutVarint(ts[:], delta) // zig-zag, as Kafka's varlong
	dst = binary.AppendVarint(dst, int64(1+n+len(rest)))
	dst = append(dst, body[0])
	dst = append(dst, ts[:n]...)
	return append(dst, rest...), nil
}

// cleanSegment rewrites one sealed segment and swaps it in. It returns the
// records removed, the new size and whether it swapped; a segment in which
// nothing changes is left as it is.
func (l *Log) cleanSegment(old *segment, keys map[string]int64, o CleanOptions) (int64, int64, bool, error) {
	oldSize := old.size.Load()
	f, removed, err := l.writeCleaned(old, keys, o)
	if err != nil || f == nil {
		if err == nil {
			l.syncMu.Lock()
			err = l.advanceCleaned(l.segNext(old))
			l.syncMu.Unlock()
		}
		return 0, oldSize, false, err
	}
	ns, err := l.checkCleaned(old, f)
	if err != nil {
		discardCleaned(f)
		return 0, oldSize, false, err
	}
	if err := l.swapSegment(old, ns); err != nil {
		return 0, oldSize, false, err
	}
	return removed, ns.size.Load(), true, nil
}

// writeCleaned writes the cleaned copy of old to <base>.log.cleaned and
// fsyncs it. It returns a nil file when no batch would change.
func (l *Log) writeCleaned(old *segment, keys map[string]int64, o CleanOptions) (*os.File, int64, error) {
	if l.closed.Load() {
		return nil, 0, ErrClosed
	}
	p := old.path(logSuffix + cleanedSuffix)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: create %s: %w", p, err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	var removed int64
	var out []byte
	changed := false
	err = l.eachBatch(old, func(b []byte, h *BatchHeader) error {
		var n int64
		var ch bool
		var ferr error
		if out, n, ch, ferr = filterBatch(out[:0], b, h, keys, o); ferr != nil {
			return ferr
		}
		removed += n
		changed = changed || ch
		_, werr := w.Write(out)
		return werr
	})
	if err == nil && !changed {
		discardCleaned(f)
		return nil, 0, nil
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = l.fsync(f)
	}
	if err == nil {
		err = cleanStep("cleaned")
	}
	if err != nil {
		discardCleaned(f)
		return nil, 0, fmt.Errorf("storage: write %s: %w", p, err)
	}
	return f, removed, nil
}

func discardCleaned(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// checkCleaned validates the fsynced cleaned file from its first byte, as
// recovery would, and builds its in-memory segment and indexes.
func (l *Log) checkCleaned(old *segment, f *os.File) (*segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("storage: stat %s: %w", f.Name(), err)
	}
	ns := newSegment(l.dir, old.base, f)
	// Gaps are allowed below the cleaned offset, which moves to old.next
	// before the swap; validate with that bound already.
	if valid, reason := l.scanWith(ns, fi.Size(), max(l.cleanedTo.Load(), l.segNext(old))); valid != fi.Size() {
		return nil, fmt.Errorf("storage: cleaned segment %s invalid at %d: %s", f.Name(), valid, reason)
	}
	ns.seal()
	ns.created = old.created
	return ns, nil
}

// swapSegment replaces old by the cleaned segment ns, crash-safely: the
// cleaned offset is persisted (so recovery accepts the gaps), the fsynced
// .cleaned file is renamed to .swap (from here Open completes the swap),
// the old index files go, .swap is renamed over the .log, and the segment
// snapshot is swapped with readMu held exclusively, so no reader still uses
// the old file when it is closed (its inode is freed then).
func (l *Log) swapSegment(old, ns *segment) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	err := l.usableLocked()
	// Truncate into old would have made it the active segment; retention
	// or Truncate below it would have taken it out of the snapshot.
	gone := old == l.active || !slices.Contains(*l.segs.Load(), old)
	next := old.next
	l.mu.Unlock()
	if err == nil && gone {
		err = errSegmentGone
	}
	if err != nil {
		discardCleaned(ns.f)
		return err
	}
	steps := []func() error{
		func() error { return l.advanceCleaned(next) },
		func() error { return cleanStep("checkpoint") },
		func() error { return os.Rename(ns.f.Name(), old.path(logSuffix+swapSuffix)) },
		func() error { return SyncDir(l.dir) },
		func() error { return cleanStep("swap") },
		func() error { return old.removeIndexFiles() },
		func() error { return cleanStep("indexes") },
		func() error { return os.Rename(old.path(logSuffix+swapSuffix), old.path(logSuffix)) },
		func() error { return SyncDir(l.dir) },
		func() error { return cleanStep("renamed") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			if i < 2 {
				discardCleaned(ns.f)
				return fmt.Errorf("storage: swap cleaned segment %d: %w", old.base, err)
			}
			// Past the first rename the files on disk no longer match the
			// in-memory segment, which keeps serving the old inode. Fail
			// the log: the broker reopens it, and Open completes the swap.
			_ = ns.f.Close()
			return l.fail("compact", old.path(logSuffix), err)
		}
	}
	l.replaceSegment(old, ns)
	old.closeFile()
	l.persistSealed([]*segment{ns})
	return nil
}

func (l *Log) replaceSegment(old, ns *segment) {
	l.readMu.Lock()
	defer l.readMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := slices.Clone(*l.segs.Load())
	if i := slices.Index(segs, old); i >= 0 {
		segs[i] = ns
	}
	l.segs.Store(&segs)
}

// segNext reads a segment's end offset (writer state, guarded by mu).
func (l *Log) segNext(s *segment) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.next
}

// advanceCleaned persists a new cleaned offset (never moving it back).
// Called with syncMu held.
func (l *Log) advanceCleaned(offset int64) error {
	if offset <= l.cleanedTo.Load() {
		return nil
	}
	return l.writeCleanCheckpoint(offset)
}

// lowerCleaned moves the cleaned offset down to a new log end after
// Truncate, so batches appended from there are held to contiguous offsets
// again by recovery. Called with syncMu held.
func (l *Log) lowerCleaned(end int64) {
	if end >= l.cleanedTo.Load() {
		return
	}
	if err := l.writeCleanCheckpoint(end); err != nil {
		// Only recovery's gap check stays looser than it could be.
		l.logger().Warn("storage: cannot lower cleaner checkpoint after truncate", "offset", end, "err", err)
	}
}

func (l *Log) writeCleanCheckpoint(offset int64) error {
	b := make([]byte, 0, cleanCheckpointSize)
	b = append(b, cleanerMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := WriteFileAtomic(filepath.Join(l.dir, cleanCheckpointName), b); err != nil {
		return err
	}
	l.cleanedTo.Store(offset)
	return nil
}

// readCleanCheckpoint returns the persisted cleaned offset, 0 if none, -1
// if the file is corrupt (only outside damage does that: it is written
// atomically). Recovery then allows gaps in every sealed segment rather than
// cut compacted segments and lose latest values.
func (l *Log) readCleanCheckpoint() int64 {
	p := filepath.Join(l.dir, cleanCheckpointName)
	b, err := ReadFile(p)
	if err != nil {
		return 0
	}
	if len(b) != cleanCheckpointSize || string(b[:8]) != cleanerMagic ||
		crc32.Checksum(b[:cleanCheckpointSize-4], castagnoli) != binary.BigEndian.Uint32(b[cleanCheckpointSize-4:]) {
		l.logger().Warn("storage: corrupt cleaner checkpoint; allowing offset gaps in all sealed segments", "path", p)
		return -1
	}
	return max(0, int64(binary.BigEndian.Uint64(b[8:])))
}

// CleanedOffset is the offset below which the log has been compacted.
func (l *Log) CleanedOffset() int64 { return l.cleanedTo.Load() }

// recoverCleanFile handles a cleaner file found by Open: an incomplete
// .cleaned copy is deleted; a complete .swap copy replaces its segment's log
// (its old index files go first, so they are never paired with it). It
// reports whether name was a cleaner file.
func (l *Log) recoverCleanFile(name string) bool {
	if strings.HasSuffix(name, logSuffix+cleanedSuffix) {
		l.removeStray(name)
		return true
	}
	logName, ok := strings.CutSuffix(name, swapSuffix)
	if !ok {
		return false
	}
	base, ok := parseSegmentName(logName, logSuffix)
	if !ok {
		return false
	}
	s := newSegment(l.dir, base, nil)
	if err := s.removeIndexFiles(); err != nil {
		l.logger().Warn("storage: completing cleaner swap", "err", err)
	}
	if err := os.Rename(filepath.Join(l.dir, name), s.path(logSuffix)); err != nil {
		l.logger().Warn("storage: cannot complete cleaner swap", "path", name, "err", err)
		return true
	}
	l.logger().Info("storage: completed interrupted cleaner swap", "path", s.path(logSuffix))
	return true
}

// gapOK reports whether a batch based at base may follow the offset want
// with a gap: only inside the compacted part of the log.
func (l *Log) gapOK(base, want int64) bool {
	return base == want || (base > want && base < l.cleanedTo.Load())
}
