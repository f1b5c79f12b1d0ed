package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	cleanMarkerName = "clean-shutdown"
	cleanMagicV1    = "CHRNKCL1"
	cleanMagic      = "CHRNKCL2"
	cleanMarkerV1   = 8 + 3*8 + 4
	// cleanMarkerHead: magic, base, size, end, index and time index
	// lengths in bytes.
	cleanMarkerHead = 8 + 3*8 + 2*4
	// recoverBufBytes is the read-ahead for validating scans: large enough to
	// make the scan sequential I/O, small enough to not matter per partition.
	recoverBufBytes = 256 << 10
)

// cleanMarker records the tail segment as it was at a clean Close or
// Checkpoint: its base, size and end offset, and (format 2) its offset and
// time index, so the tail needs no index files of its own. It is valid only
// if the tail still has exactly that base and size.
type cleanMarker struct {
	base, size, end int64
	// withIndex: the marker carries the tail's index (format 2); a
	// format-1 marker (older brokers) relies on the tail's index files.
	withIndex bool
	idx       []indexEntry
	tidx      []timeEntry
}

// encode writes format 2: magic "CHRNKCL2", base, size, end (int64 each),
// the index and time index lengths in bytes (uint32 each), the entries as
// in the index files, CRC-32C of all of it.
func (m cleanMarker) encode() []byte {
	ib, tb := len(m.idx)*indexEntrySize, len(m.tidx)*timeIndexEntrySize
	b := make([]byte, 0, cleanMarkerHead+ib+tb+4)
	b = append(b, cleanMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.base))
	b = binary.BigEndian.AppendUint64(b, uint64(m.size))
	b = binary.BigEndian.AppendUint64(b, uint64(m.end))
	b = binary.BigEndian.AppendUint32(b, uint32(ib))
	b = binary.BigEndian.AppendUint32(b, uint32(tb))
	b = append(b, encodeIndex(m.idx)...)
	b = append(b, encodeTimeIndex(m.tidx)...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCleanMarker reads format 1 or 2. The index entries of format 2 are
// checked against the log by loadTrusted (decodeIndex, decodeTimeIndex).
// A marker overwritten in place and torn by a crash fails the CRC.
func decodeCleanMarker(b []byte) (cleanMarker, bool) {
	be := binary.BigEndian
	if len(b) < 8+3*8+4 || crc32.Checksum(b[:len(b)-4], castagnoli) != be.Uint32(b[len(b)-4:]) {
		return cleanMarker{}, false
	}
	m := cleanMarker{base: int64(be.Uint64(b[8:])), size: int64(be.Uint64(b[16:])), end: int64(be.Uint64(b[24:]))}
	switch string(b[:8]) {
	case cleanMagicV1:
		return m, len(b) == cleanMarkerV1
	case cleanMagic:
		if len(b) < cleanMarkerHead+4 {
			return cleanMarker{}, false
		}
		ib, tb := int64(be.Uint32(b[32:])), int64(be.Uint32(b[36:]))
		if int64(len(b)) != cleanMarkerHead+ib+tb+4 {
			return cleanMarker{}, false
		}
		var err1, err2 error
		m.idx, err1 = decodeIndex(b[cleanMarkerHead:cleanMarkerHead+ib], m.size)
		m.tidx, err2 = decodeTimeIndex(b[cleanMarkerHead+ib : cleanMarkerHead+ib+tb])
		m.withIndex = true
		return m, err1 == nil && err2 == nil
	}
	return cleanMarker{}, false
}

// markerFor describes the log with active as its tail, as it is now.
// Caller holds mu or owns the log; the index slices are shared, not copied
// (entries below their length never change).
func (l *Log) markerFor(active *segment) cleanMarker {
	active.mu.RLock()
	defer active.mu.RUnlock()
	return cleanMarker{base: active.base, size: active.size.Load(), end: l.end.Load(), withIndex: true,
		idx: active.idx[:len(active.idx):len(active.idx)], tidx: active.tidx[:len(active.tidx):len(active.tidx)]}
}

// writeCleanMarker overwrites the marker in place and fsyncs it (no new
// file, no rename: see OverwriteFile). The caller made the log durable
// first.
func (l *Log) writeCleanMarker(active *segment) error {
	return OverwriteFile(filepath.Join(l.dir, cleanMarkerName), l.markerFor(active).encode(), true)
}

// removeMarker removes the clean-shutdown marker and the tail's index
// files: from now on the tail may change, and a crash must be detected as
// unclean. Removing the marker first means no crash leaves it naming index
// files that are gone or a tail that changed.
func (l *Log) removeMarker(active *segment) error {
	p := filepath.Join(l.dir, cleanMarkerName)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: remove %s: %w", p, err)
	}
	return active.removeIndexFiles()
}

// unmarkLocked is called before anything but an append changes the tail
// segment (roll, truncate). A log opened clean keeps its marker and tail
// index files until then; they go now, and the next Sync fsyncs the
// directory so the removal is durable together with the data that follows
// it (a power loss that brought the marker back would find a tail longer
// than it says, or exactly as it says plus data the WAL replays). Caller
// holds mu.
func (l *Log) unmarkLocked() error {
	l.untouched = false
	if !l.marked && !l.staleMarker {
		return nil
	}
	if err := l.removeMarker(l.active); err != nil {
		return l.failLocked("remove", l.dir, err)
	}
	l.marked, l.staleMarker = false, false
	l.dirNeedsSync = true
	return nil
}

// unmarkAppendLocked is unmarkLocked for an append, without touching the
// disk: the first append to each of thousands of partitions after a clean
// start must not cost an unlink on the producer's path, nor a new file at
// the next close. Leaving the marker is safe while the log only grows: it
// names the tail's size, a tail of any other size is validated from its
// first byte on open, and a log that only grows never returns to that size
// with other bytes (a tail still of that size holds exactly what the
// marker describes; the WAL replays the rest). Truncate and roll remove it
// first (unmarkLocked); Close and Checkpoint overwrite it. Caller holds mu.
func (l *Log) unmarkAppendLocked() {
	l.untouched = false
	if l.marked {
		l.marked, l.staleMarker = false, true
	}
}

// dropStaleMarkerLocked removes a stale marker (see unmarkAppendLocked):
// at the close of a failed log, which writes no new one. Caller holds
// syncMu and mu.
func (l *Log) dropStaleMarkerLocked() error {
	if !l.staleMarker {
		return nil
	}
	return l.unmarkLocked()
}

// Marked reports whether the log is unchanged since it was opened clean or
// checkpointed: its clean-shutdown marker is on disk and Close has nothing
// to write.
func (l *Log) Marked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.marked || l.untouched
}

// Checkpoint makes the log what a clean Close leaves, without closing it:
// everything appended is fsynced, then the clean-shutdown marker (with the
// tail's index) is written. A crash before the next append then
// finds the log trusted and validates nothing. It is meant for logs that
// have been idle a while (the broker's recovery-point sweep): it holds the
// append lock while writing the marker. A log that is marked
// already, failed or closed is left as it is.
func (l *Log) Checkpoint() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.marked || l.closed.Load() || l.failed != nil {
		return nil
	}
	if err := l.ensureFilesLocked(); err != nil {
		return err
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	active, pending, dirSync := l.active, l.pending, l.dirNeedsSync
	// Appends wait on mu meanwhile: the files written below describe
	// exactly this state.
	if err := l.syncFilesLocked(active, pending, dirSync); err != nil {
		return err
	}
	l.pending, l.dirNeedsSync = nil, false
	end := l.end.Load()
	l.synced.Store(end)
	l.MarkDurable(end)
	l.persistSealed(pending)
	if err := l.writeCleanMarker(active); err != nil {
		// Not fatal: the log just stays unmarked. The marker may be
		// torn (its CRC fails) or whole: treat it as stale.
		l.logger().Warn("storage: writing the clean-shutdown marker failed; the log is validated on open", "err", err)
		l.staleMarker = true
		return nil
	}
	l.marked, l.staleMarker = true, false
	return nil
}

// recover rebuilds the in-memory state from the directory. See doc.go for
// the rules; the short version: sealed segments with valid index files are
// trusted, everything else is validated batch by batch and cut at the first
// bad batch, and nothing after a cut survives.
func (l *Log) recover() error {
	var (
		bases       = []int64{0}
		marker      cleanMarker
		validMarker bool
		err         error
	)
	if l.opts.Created {
		l.cleanedTo.Store(-1)
	} else {
		l.cleanedTo.Store(l.readCleanCheckpoint())
		if bases, marker, validMarker, err = l.scanDir(); err != nil {
			return err
		}
	}
	clean := validMarker && len(bases) > 0 && bases[len(bases)-1] == marker.base
	if l.cleanedTo.Load() < 0 {
		l.cleanedTo.Store(0)
		if n := len(bases); n > 0 {
			l.cleanedTo.Store(bases[n-1]) // the tail is never compacted
		}
	}
	var kept []*segment
	unclean := !clean
	tailTrusted := false
	for i, base := range bases {
		// Compaction may have removed the last records of a segment: a gap
		// before the next one is expected up to the cleaned offset.
		if n := len(kept); n > 0 && base != kept[n-1].next && (base < kept[n-1].next || base > l.cleanedTo.Load()) {
			l.dropFrom(bases[i:], fmt.Sprintf("segment base %d does not follow log end %d", base, kept[n-1].next))
			break
		}
		last := i == len(bases)-1
		var tail *cleanMarker
		if last && clean && marker.base == base {
			tail = &marker
		}
		s, cut, trusted, err := l.openSegment(base, last, tail)
		if err != nil {
			closeAll(kept)
			return err
		}
		if cut && !last {
			kept = append(kept, s)
			unclean = true
			l.dropFrom(bases[i+1:], fmt.Sprintf("segment %d was cut during recovery", base))
			break
		}
		if s.size.Load() == 0 && !last && base >= l.cleanedTo.Load() {
			// Only outside tampering leaves an empty sealed segment above
			// the cleaned offset; it holds nothing. Below it, compaction
			// leaves segments whose records all went: they stay, so the
			// first segment's base, and with it the log start, stays put.
			_ = s.remove()
			continue
		}
		kept = append(kept, s)
		tailTrusted = last && trusted
	}
	fresh := len(kept) == 0
	if fresh {
		// Retention keeps the active segment, so a log with a persisted
		// start has a segment file; should it still have none, start at
		// the persisted start, never below it, so offsets do not go back.
		s, err := createSegment(l.dir, max(0, l.readStartCheckpoint()))
		if err != nil {
			return err
		}
		kept = append(kept, s)
	}
	active := kept[len(kept)-1]
	if clean && (active.base != marker.base || active.next != marker.end) {
		unclean = true
	}
	// One empty segment (new, or closed untouched): nothing to validate
	// or make durable but its directory entry; the first Sync does that.
	fresh = fresh || (unclean && len(kept) == 1 && active.size.Load() == 0)
	if !unclean && tailTrusted {
		// The marker describes the log as it is: keep it until the
		// first change (unmarkLocked), so a
		// partition opened and closed (or killed) without being written
		// costs no writes and is trusted again next time.
		l.marked = true
	} else if fresh {
		// A new log (a partition's first open): nothing to recover and
		// nothing to make durable but the new segment's directory entry,
		// which the first Sync fsyncs with the data (as for a roll), so
		// opening thousands of new partitions costs no fsync each. A
		// marker file that is not valid (the empty one CreateTopics
		// makes) stays, to be overwritten by the first close.
		if validMarker {
			if err := l.removeMarker(active); err != nil {
				closeAll(kept)
				return err
			}
		}
		l.dirNeedsSync = true
		l.untouched = true
	} else {
		// A marker the tail grew past still describes a prefix that was
		// durable when it was written and is unchanged (a cut below its
		// size would make the condition false): it stays, stale, to be
		// overwritten in place by the next close (no unlink now and no
		// new file then), as an append would have left it. Any other
		// valid marker goes; an invalid one (torn) can never be
		// trusted and stays to be overwritten. Tail index files a
		// format-1 broker left always go.
		if clean && marker.size < active.size.Load() {
			l.staleMarker = true
			err = active.removeIndexFiles()
		} else if validMarker {
			err = l.removeMarker(active)
		} else {
			err = active.removeIndexFiles()
		}
		if err != nil {
			closeAll(kept)
			return err
		}
		if unclean && !l.opts.DeferRecoverySync {
			// What survived recovery is reported durable, so make it so.
			if err := active.f.Sync(); err != nil {
				closeAll(kept)
				return fmt.Errorf("storage: fsync %s: %w", active.f.Name(), err)
			}
		}
		if l.opts.DeferRecoverySync {
			l.dirNeedsSync = true
		} else if err := SyncDir(l.dir); err != nil {
			closeAll(kept)
			return err
		}
	}
	if active.size.Load() == 0 {
		// Age counts from the first append, so an empty tail starts fresh.
		active.created = time.Time{}
	}
	l.active = active
	l.segs.Store(&kept)
	l.end.Store(active.next)
	l.written.Store(active.next)
	l.durable.Store(active.next)
	l.synced.Store(active.next)
	return nil
}

// scanDir lists segment bases, removes temporary and orphaned files, and
// reads the clean-shutdown marker (valid: its CRC checks; recover decides
// whether it still describes the log).
func (l *Log) scanDir() (bases []int64, m cleanMarker, valid bool, err error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, m, false, fmt.Errorf("storage: list %s: %w", l.dir, err)
	}
	logs := map[int64]bool{}
	var indexes []string
	for _, e := range entries {
		name := e.Name()
		if l.recoverCleanFile(name) {
			if base, ok := parseSegmentName(strings.TrimSuffix(name, swapSuffix), logSuffix); ok && !logs[base] && strings.HasSuffix(name, swapSuffix) {
				logs[base] = true
				bases = append(bases, base)
			}
			continue
		}
		if base, ok := parseSegmentName(name, logSuffix); ok {
			if logs[base] {
				continue // already added by a completed swap
			}
			logs[base] = true
			bases = append(bases, base)
			continue
		}
		if strings.HasSuffix(name, tmpSuffix) {
			l.removeStray(name)
			continue
		}
		indexes = append(indexes, name)
	}
	for _, name := range indexes {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if base, ok := parseSegmentName(name, suf); ok && !logs[base] {
				l.removeStray(name)
			}
		}
	}
	slices.Sort(bases)
	markerPath := filepath.Join(l.dir, cleanMarkerName)
	if b, err := ReadFile(markerPath); err == nil {
		m, valid = decodeCleanMarker(b)
	}
	return bases, m, valid, nil
}

func (l *Log) removeStray(name string) {
	p := filepath.Join(l.dir, name)
	if err := os.Remove(p); err != nil {
		l.logger().Warn("storage: cannot remove stray file", "path", p, "err", err)
		return
	}
	l.logger().Info("storage: removed stray file", "path", p)
}

// dropFrom deletes segments that can no longer be part of the log because an
// earlier one was cut or does not connect. Nothing in them was acknowledged
// as durable: Sync fsyncs older segments no later than newer ones.
func (l *Log) dropFrom(bases []int64, reason string) {
	for _, base := range bases {
		s := newSegment(l.dir, base, nil)
		p := s.path(logSuffix)
		size := int64(-1)
		if fi, err := os.Stat(p); err == nil {
			size = fi.Size()
		}
		l.logger().Warn("storage: dropping segment during recovery", "path", p, "bytes_dropped", size, "reason", reason)
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := os.Remove(s.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.logger().Warn("storage: cannot remove dropped segment file", "path", s.path(suf), "err", err)
			}
		}
	}
}

func closeAll(segs []*segment) {
	for _, s := range segs {
		s.closeFile()
	}
}

// openSegment opens one segment and rebuilds its state. A segment is trusted
// (indexes loaded, only its last few batches walked) if it is sealed, or is
// the tail of a clean shutdown, and its index files check out. Otherwise it is
// validated from its first byte and cut at the first bad batch; cut reports
// whether bytes were dropped. tail is the clean-shutdown marker if it names
// this segment.
func (l *Log) openSegment(base int64, last bool, tail *cleanMarker) (s *segment, cut, trusted bool, err error) {
	p := filepath.Join(l.dir, segmentName(base, logSuffix))
	f, err := openFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, false, false, fmt.Errorf("storage: open %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, false, false, fmt.Errorf("storage: stat %s: %w", p, err)
	}
	s = newSegment(l.dir, base, f)
	// The wall clock of the first append is not on disk; the last write time
	// is a later stand-in, so a recovered segment rolls at most one age late.
	s.created = fi.ModTime()
	size := fi.Size()
	if size > math.MaxInt32 {
		// Index positions are 32-bit; never written by us.
		size = math.MaxInt32
	}
	if !last || (tail != nil && tail.size == fi.Size()) {
		var terr error
		if tail != nil && tail.withIndex {
			terr = l.checkTrusted(s, size, tail.idx, tail.tidx) // no index files of its own
		} else {
			terr = l.loadTrusted(s, size)
		}
		if terr == nil && tail != nil && s.next != tail.end {
			terr = fmt.Errorf("%w: log end %d, clean marker says %d", errBadIndex, s.next, tail.end)
		}
		if terr == nil && size == fi.Size() {
			return s, false, true, nil
		}
		if !errors.Is(terr, os.ErrNotExist) {
			l.logger().Warn("storage: segment index unusable, validating segment", "path", p, "err", terr)
		}
	}
	valid, reason := l.fullScan(s, size)
	if valid == fi.Size() {
		return s, false, false, nil
	}
	l.logger().Warn("storage: truncating segment at first bad batch",
		"path", p, "offset", s.next, "position", valid, "bytes_dropped", fi.Size()-valid, "reason", reason)
	if err := f.Truncate(valid); err != nil {
		_ = f.Close()
		return nil, false, false, fmt.Errorf("storage: truncate %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, false, false, fmt.Errorf("storage: fsync %s: %w", p, err)
	}
	if err := s.removeIndexFiles(); err != nil {
		_ = f.Close()
		return nil, false, false, err
	}
	return s, true, false, nil
}

// loadTrusted loads a segment's index files, checks them against the log and
// walks the batch headers after the last index entry to find the segment end.
// CRCs are not checked: the log was fsynced before its index was written.
func (l *Log) loadTrusted(s *segment, size int64) error {
	ib, err := ReadFile(s.path(indexSuffix))
	if err != nil {
		return err
	}
	tb, err := ReadFile(s.path(timeIndexSuffix))
	if err != nil {
		return err
	}
	idx, err := decodeIndex(ib, size)
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		return err
	}
	if err := l.checkTrusted(s, size, idx, tidx); err != nil {
		return err
	}
	s.persisted = true
	return nil
}

// checkTrusted is loadTrusted with the index already decoded (from the
// index files or a clean-shutdown marker: decodeIndex checked its
// positions against the log's size).
func (l *Log) checkTrusted(s *segment, size int64, idx []indexEntry, tidx []timeEntry) error {
	var pos, want int64 = 0, s.base
	if n := len(idx); n > 0 {
		pos, want = int64(idx[n-1].pos), s.base+int64(idx[n-1].rel)
	}
	hr := newHeaderReader(s)
	defer hr.release()
	next, lastBase, maxTS := s.base, int64(-1), int64(noTimestamp)
	if n := len(tidx); n > 0 {
		maxTS = tidx[n-1].ts
	}
	for pos < size {
		hb, base, nxt, bsize, err := hr.header(pos, size)
		if err != nil {
			return err
		}
		if !l.gapOK(base, want) || nxt-s.base > math.MaxUint32 {
			return fmt.Errorf("%w: batch at position %d has base %d, want %d", errBadIndex, pos, base, want)
		}
		maxTS = max(maxTS, int64(binary.BigEndian.Uint64(hb[offMaxTimestamp:])))
		lastBase, next, want = base, nxt, nxt
		pos += bsize
	}
	if n := len(tidx); n > 0 && (lastBase < 0 || s.base+int64(tidx[n-1].rel) > lastBase) {
		return fmt.Errorf("%w: time index points past the last batch", errBadIndex)
	}
	if len(idx) > 0 {
		s.bytesSinceIndex = int(size - int64(idx[len(idx)-1].pos))
	} else {
		s.bytesSinceIndex = int(size)
	}
	s.idx, s.tidx = idx, tidx
	s.next, s.lastBase = next, lastBase
	s.maxTS.Store(maxTS)
	s.size.Store(size)
	return nil
}

// fullScan validates every batch of the segment from position 0 and rebuilds
// its indexes. It returns the end of the last good batch and why the scan
// stopped early, if it did.
func (l *Log) fullScan(s *segment, size int64) (valid int64, reason string) {
	return l.scanWith(s, size, l.cleanedTo.Load())
}

// scanWith is fullScan accepting gaps in offsets, and batches whose record
// count is below their offset span, for batches based below cleanedTo.
var (
	scanReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, recoverBufBytes) }}
	scanBufs    = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

func (l *Log) scanWith(s *segment, size, cleanedTo int64) (valid int64, reason string) {
	s.idx, s.tidx, s.next, s.lastBase, s.bytesSinceIndex = nil, nil, s.base, -1, 0
	s.maxTS.Store(noTimestamp)
	s.size.Store(0)
	// Pooled: thousands of partitions validated one after another (a WAL
	// replay after a crash) would otherwise allocate 320 KiB each.
	r := scanReaders.Get().(*bufio.Reader)
	r.Reset(io.NewSectionReader(s.f, 0, size))
	bufp := scanBufs.Get().(*[]byte)
	buf := (*bufp)[:0]
	defer func() {
		r.Reset(nil)
		scanReaders.Put(r)
		if cap(buf) <= 1<<20 {
			*bufp = buf[:0]
			scanBufs.Put(bufp)
		}
	}()
	var pos int64
	for pos < size {
		buf = buf[:BatchHeaderSize]
		if _, err := io.ReadFull(r, buf); err != nil {
			return pos, "torn batch header"
		}
		n := int64(int32(binary.BigEndian.Uint32(buf[offBatchLength:]))) + batchLengthOverhead
		if n < BatchHeaderSize || n > size-pos {
			return pos, fmt.Sprintf("batch length %d with %d bytes left", n, size-pos)
		}
		buf = slices.Grow(buf, int(n)-len(buf))[:n]
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:]); err != nil {
			return pos, "torn batch"
		}
		h, err := ValidateBatch(buf)
		compacted := h.BaseOffset >= s.next && h.BaseOffset < cleanedTo
		// Compaction leaves batches with fewer records than offsets, and
		// keeps a producer's last batch even with none (clean.go).
		if errors.Is(err, ErrBatchRecordSpan) && compacted && h.RecordCount >= 0 && int64(h.RecordCount) <= int64(h.LastOffsetDelta)+1 {
			err = nil
		}
		if err != nil {
			return pos, err.Error()
		}
		if (h.BaseOffset != s.next && !compacted) || h.BaseOffset < s.next || h.NextOffset()-s.base > math.MaxUint32 {
			return pos, fmt.Sprintf("batch base offset %d, want %d", h.BaseOffset, s.next)
		}
		s.size.Store(pos + n)
		s.track(&h, pos, l.opts.IndexIntervalBytes)
		pos += n
	}
	return pos, ""
}

// Truncate removes every batch containing an offset at or after offset. A
// batch is never split, so the new log end is the base of the batch holding
// offset, which may be below offset. Reads wait for it to finish.
func (l *Log) Truncate(offset int64) error {
	defer l.lockAll()()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if err := l.ensureFilesLocked(); err != nil {
		return err
	}
	if offset < l.end.Load() && (l.marked || l.staleMarker) {
		// A truncated tail appended to again could reach the size the
		// marker names with other bytes: the removal must be durable
		// before the cut.
		if err := l.unmarkLocked(); err != nil {
			return err
		}
		if err := SyncDir(l.dir); err != nil {
			return l.failLocked("fsync", l.dir, err)
		}
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	segs := *l.segs.Load()
	if offset >= l.end.Load() {
		return nil
	}
	if start := l.LogStartOffset(); offset < start {
		return fmt.Errorf("%w: truncate to %d below log start %d", ErrOffsetOutOfRange, offset, start)
	}
	i := segmentFor(segs, offset)
	for _, s := range segs[i+1:] {
		if err := s.remove(); err != nil {
			return l.failLocked("truncate", s.path(logSuffix), err)
		}
	}
	s := segs[i]
	pos, err := l.cutPosition(s, offset)
	if err != nil {
		return l.failLocked("truncate", s.path(logSuffix), err)
	}
	s.refs.cuts.Add(1) // before cutting: ranges read earlier are no longer Intact
	if err := s.f.Truncate(pos); err != nil {
		return l.failLocked("truncate", s.path(logSuffix), err)
	}
	if err := s.f.Sync(); err != nil {
		return l.failLocked("fsync", s.path(logSuffix), err)
	}
	if err := s.removeIndexFiles(); err != nil {
		return l.failLocked("truncate", s.path(indexSuffix), err)
	}
	if valid, reason := l.fullScan(s, pos); valid != pos {
		return l.failLocked("truncate", s.path(logSuffix), errors.New(reason))
	}
	s.created = time.Time{}
	if pos > 0 {
		s.created = time.Now()
	}
	kept := slices.Clone(segs[:i+1])
	l.pending = slices.DeleteFunc(l.pending, func(p *segment) bool { return p.base >= s.base })
	l.active = s
	l.reserved = 0
	l.segs.Store(&kept)
	l.end.Store(s.next)
	l.written.Store(s.next)
	if l.durable.Load() > s.next {
		l.durable.Store(s.next)
	}
	if l.synced.Load() > s.next {
		l.synced.Store(s.next)
	}
	if err := SyncDir(l.dir); err != nil {
		return l.failLocked("fsync", l.dir, err)
	}
	l.lowerCleaned(s.next)
	return nil
}

// cutPosition returns the position of the batch containing offset.
func (l *Log) cutPosition(s *segment, offset int64) (int64, error) {
	var hb [scanHeaderSize]byte
	limit := s.size.Load()
	for pos := s.lookup(offset); pos < limit; {
		_, next, size, err := s.readHeader(hb[:], pos, limit)
		if err != nil {
			return 0, err
		}
		if next > offset {
			return pos, nil
		}
		pos += size
	}
	return limit, nil
}
