package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// segmentFor returns the index of the segment that would hold offset: the
// last one whose base is <= offset, or 0.
func segmentFor(segs []*segment, offset int64) int {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })
	if i == 0 {
		return 0
	}
	return i - 1
}

// Read appends to dst whole batches starting with the one containing offset,
// limited to batches whose base offset is below upTo, and stops before the
// batch that would take the total past maxBytes; the first batch is returned
// even if it alone is larger (KIP-74). offset == LogEndOffset returns dst
// unchanged; offsets outside [LogStartOffset, LogEndOffset] return
// ErrOffsetOutOfRange. ReadFile returns the same batches as file ranges.
func (l *Log) Read(offset int64, maxBytes int, upTo int64, dst []byte) ([]byte, error) {
	err := l.walk(offset, maxBytes, upTo, func(s *segment, from, to int64, _ int) (err error) {
		dst, err = readRange(s, dst, from, to)
		return err
	})
	return dst, err
}

// walk finds the batches Read returns and calls fn once per segment with
// their byte range [from, to) and record count, in order, with the read
// lock held (so the segment's file is open).
func (l *Log) walk(offset int64, maxBytes int, upTo int64, fn func(s *segment, from, to int64, records int) error) error {
	if err := l.flushFor(upTo); err != nil {
		return err
	}
	l.readMu.RLock()
	defer l.readMu.RUnlock()
	if l.closed.Load() {
		return ErrClosed
	}
	end := l.end.Load()
	segs := *l.segs.Load()
	if start := l.LogStartOffset(); offset < start || offset > end {
		return outOfRange(offset, start, end)
	}
	total := 0
	var hb [BatchHeaderSize]byte
	for i := segmentFor(segs, offset); i < len(segs); i++ {
		s := segs[i]
		limit := s.size.Load()
		pos := s.lookup(offset)
		from, stop, records := int64(-1), false, 0
		for pos < limit {
			base, next, size, err := s.readHeader(hb[:], pos, limit)
			if err != nil {
				return err
			}
			if next <= offset {
				pos += size
				continue
			}
			if base >= upTo || (total > 0 && total+int(size) > maxBytes) {
				stop = true
				break
			}
			if from < 0 {
				from = pos
			}
			total += int(size)
			records += int(int32(binary.BigEndian.Uint32(hb[offRecordCount:])))
			pos += size
		}
		if from >= 0 {
			if err := fn(s, from, pos, records); err != nil {
				return err
			}
		}
		if stop {
			break
		}
	}
	return nil
}

func outOfRange(offset, start, end int64) error {
	return fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
}

// readRange appends the bytes [from, to) of the segment to dst.
func readRange(s *segment, dst []byte, from, to int64) ([]byte, error) {
	n := int(to - from)
	dst = slices.Grow(dst, n)
	out := dst[len(dst) : len(dst)+n]
	if _, err := s.f.ReadAt(out, from); err != nil {
		return dst, fmt.Errorf("storage: read %s at %d: %w", s.path(logSuffix), from, err)
	}
	return dst[:len(dst)+n], nil
}

// ScanBatches calls fn with the header of every batch whose next offset is
// above from, in offset order, and stops at the first error fn returns. fn
// runs with the log's read lock held: it must not call Truncate or Close.
func (l *Log) ScanBatches(from int64, fn func(h BatchHeader) error) error {
	if err := l.flushFor(math.MaxInt64); err != nil {
		return err
	}
	l.readMu.RLock()
	defer l.readMu.RUnlock()
	if l.closed.Load() {
		return ErrClosed
	}
	segs := *l.segs.Load()
	for i := segmentFor(segs, from); i < len(segs); i++ {
		if err := scanSegment(segs[i], from, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanSegment calls fn for the header of every batch of s ending above from.
func scanSegment(s *segment, from int64, fn func(h BatchHeader) error) error {
	r := newHeaderReader(s)
	defer r.release()
	limit := s.size.Load()
	for pos := s.lookup(from); pos < limit; {
		hdr, _, next, size, err := r.header(pos, limit)
		if err != nil {
			return err
		}
		pos += size
		if next <= from {
			continue
		}
		h, _ := ParseBatchHeader(hdr)
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// OffsetForTimestamp implements ListOffsets by timestamp: the offset and
// timestamp of the first record (in offset order) whose timestamp is >= ts.
// ok is false if there is none. It covers all appended data; the caller
// hides results at or above the high watermark.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool) {
	offset, timestamp, ok, err := l.findTimestamp(ts, false)
	if err != nil {
		l.logger().Warn("storage: timestamp lookup failed", "timestamp", ts, "err", err)
		return -1, -1, false
	}
	return offset, timestamp, ok
}

// MaxTimestamp returns the largest record timestamp in the log and the
// offset of the first record carrying it (ListOffsets -3, KIP-734), or -1, -1
// for an empty log.
func (l *Log) MaxTimestamp() (ts int64, offset int64) {
	maxTS := int64(noTimestamp)
	for _, s := range *l.segs.Load() {
		maxTS = max(maxTS, s.maxTS.Load())
	}
	if maxTS == noTimestamp {
		return -1, -1
	}
	off, _, ok, err := l.findTimestamp(maxTS, true)
	if err != nil || !ok {
		if err != nil {
			l.logger().Warn("storage: max timestamp lookup failed", "err", err)
		}
		return -1, -1
	}
	return maxTS, off
}

// findTimestamp finds the first batch whose max timestamp is >= ts and decodes
// it to find the first record with a timestamp >= ts. A batch whose header
// claims a larger max timestamp than any of its records holds is skipped,
// unless batchFallback asks for its base offset instead.
func (l *Log) findTimestamp(ts int64, batchFallback bool) (int64, int64, bool, error) {
	if err := l.flushFor(math.MaxInt64); err != nil {
		return -1, -1, false, err
	}
	l.readMu.RLock()
	defer l.readMu.RUnlock()
	if l.closed.Load() {
		return -1, -1, false, ErrClosed
	}
	var hb [BatchHeaderSize]byte
	var buf []byte
	start := l.LogStartOffset()
	for _, s := range *l.segs.Load() {
		if s.maxTS.Load() < ts {
			continue
		}
		limit := s.size.Load()
		for pos := s.lookupTime(ts); pos < limit; {
			base, next, size, err := s.readHeader(hb[:], pos, limit)
			if err != nil {
				return -1, -1, false, err
			}
			if next <= start { // below the log start: deleted records
				pos += size
				continue
			}
			if batchTS := int64(binary.BigEndian.Uint64(hb[offMaxTimestamp:])); batchTS >= ts {
				buf = slices.Grow(buf[:0], int(size))[:size]
				if _, err := s.f.ReadAt(buf, pos); err != nil {
					return -1, -1, false, fmt.Errorf("storage: read %s at %d: %w", s.path(logSuffix), pos, err)
				}
				off, rts, found, err := firstRecordAtLeast(buf, ts, start)
				if err != nil {
					// The CRC matched, so the client sent records that do not
					// decode. Answer at batch granularity rather than fail;
					// Debug only, since any client can cause it.
					l.logger().Debug("storage: cannot decode batch records", "offset", base, "err", err)
					return max(base, start), batchTS, true, nil
				}
				if found {
					return off, rts, true, nil
				}
				if batchFallback {
					return max(base, start), ts, true, nil
				}
			}
			pos += size
		}
	}
	return -1, -1, false, nil
}

var errBadRecords = errors.New("storage: malformed records in batch")

// firstRecordAtLeast decodes the records of one batch and returns the offset
// and timestamp of the first at or above offset minOffset with timestamp >= ts.
// With LogAppendTime every record carries the batch's max timestamp.
func firstRecordAtLeast(batch []byte, ts, minOffset int64) (int64, int64, bool, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v", errBadRecords, err)
	}
	if rb.Attributes&AttrTimestampType != 0 {
		if rb.MaxTimestamp >= ts && rb.NumRecords > 0 {
			return max(rb.FirstOffset, minOffset), rb.MaxTimestamp, true, nil
		}
		return 0, 0, false, nil
	}
	recs, err := Decompress(int8(rb.Attributes&AttrCompressionMask), rb.Records)
	if err != nil {
		return 0, 0, false, err
	}
	var r kmsg.Record
	for i := int32(0); i < rb.NumRecords && len(recs) > 0; i++ {
		n, w := binary.Varint(recs)
		if w <= 0 || n < 0 || n > int64(len(recs)-w) {
			return 0, 0, false, fmt.Errorf("%w: record %d length", errBadRecords, i)
		}
		if err := r.ReadFrom(recs[:w+int(n)]); err != nil {
			return 0, 0, false, fmt.Errorf("%w: record %d: %v", errBadRecords, i, err)
		}
		recs = recs[w+int(n):]
		if rts := rb.FirstTimestamp + r.TimestampDelta64; rts >= ts && rb.FirstOffset+int64(r.OffsetDelta) >= minOffset {
			return rb.FirstOffset + int64(r.OffsetDelta), rts, true, nil
		}
	}
	return 0, 0, false, nil
}
