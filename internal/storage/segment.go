package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	tmpSuffix       = ".tmp"
	baseDigits      = 20
	// scanHeaderSize is the prefix of a batch header needed to walk offsets:
	// base offset, length and last offset delta.
	scanHeaderSize = offLastDelta + 4
	noTimestamp    = math.MinInt64
)

// segmentName returns the file name for a segment file with the given base.
func segmentName(base int64, suffix string) string {
	var b [baseDigits]byte
	s := strconv.AppendInt(b[:0], base, 10)
	return strings.Repeat("0", baseDigits-len(s)) + string(s) + suffix
}

// parseSegmentName returns the base offset of a "<20 digits><suffix>" name.
func parseSegmentName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != baseDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil
}

// segment is one .log file and its in-memory indexes.
//
// Concurrency: the writer (the Log holding its append lock) owns the fields
// under "writer state". Readers see the file only up to size, which the writer
// publishes after a write completed, so a reader never observes a partially
// written batch. Index slices are guarded by mu because the writer appends to
// them while readers binary-search them.
type segment struct {
	base int64
	dir  string
	f    *os.File
	refs fileRefs // f closes when this reaches 0 (filerange.go)

	size  atomic.Int64 // bytes of complete batches
	maxTS atomic.Int64 // largest batch max timestamp, noTimestamp if none

	mu   sync.RWMutex
	idx  []indexEntry
	tidx []timeEntry

	// writer state, guarded by Log.mu (or owned by recovery before publication)
	next            int64 // offset after the last batch
	lastBase        int64 // base offset of the last batch, -1 if empty
	bytesSinceIndex int
	created         time.Time // wall clock of the first append, zero if empty
	persisted       bool      // index files on disk describe this segment

	dropped int64 // page cache dropped below this position; under Log.syncMu
	kicked  int64 // writeback started below this position; under Log.mu
}

func newSegment(dir string, base int64, f *os.File) *segment {
	s := &segment{base: base, dir: dir, f: f, next: base, lastBase: -1}
	s.refs.n.Store(1)
	s.maxTS.Store(noTimestamp)
	return s
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// createSegment creates (or empties) the log file for a new segment.
func createSegment(dir string, base int64) (*segment, error) {
	p := filepath.Join(dir, segmentName(base, logSuffix))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment %s: %w", p, err)
	}
	return newSegment(dir, base, f), nil
}

// CreateFirstSegment creates the empty first segment file of a new log in dir
// (nothing if a segment exists), without an fsync: opening a log whose only
// segment is empty treats it as new, and its first Sync fsyncs the
// directory before any data in it counts as durable. It also creates an
// empty clean-shutdown marker file (not a valid marker: a new log is not
// trusted by it), so that the first close overwrites a file in place
// instead of creating one per partition at the first stop.
func CreateFirstSegment(dir string) error {
	p := filepath.Join(dir, segmentName(0, logSuffix))
	f, err := openFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: create segment %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return CreateEmpty(filepath.Join(dir, cleanMarkerName))
}

// CreateEmpty creates an empty file at path unless one exists (no fsync):
// a placeholder for a file overwritten in place later (OverwriteFile).
func CreateEmpty(path string) error {
	f, err := openFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", path, err)
	}
	return f.Close()
}

// track updates indexes and writer state for a batch just made visible at pos.
// The same rules serve appends and index rebuilds, so a rebuilt index equals
// the one written live.
func (s *segment) track(h *BatchHeader, pos int64, interval int) {
	rel := uint32(h.BaseOffset - s.base)
	ts := h.MaxTimestamp
	if ts > s.maxTS.Load() {
		s.maxTS.Store(ts)
	}
	if s.bytesSinceIndex >= interval {
		maxTS := s.maxTS.Load()
		s.mu.Lock()
		s.idx = append(s.idx, indexEntry{rel: rel, pos: uint32(pos)})
		if n := len(s.tidx); n == 0 || maxTS > s.tidx[n-1].ts {
			s.tidx = append(s.tidx, timeEntry{ts: maxTS, rel: rel})
		}
		s.mu.Unlock()
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += h.Size()
	s.lastBase = h.BaseOffset
	s.next = h.NextOffset()
}

// seal adds a final time index entry so that the segment's maximum timestamp
// survives in the time index file: the trusted-open path reads it from there.
func (s *segment) seal() {
	maxTS := s.maxTS.Load()
	if s.lastBase < 0 || maxTS == noTimestamp {
		return
	}
	s.mu.Lock()
	if n := len(s.tidx); n == 0 || maxTS > s.tidx[n-1].ts {
		s.tidx = append(s.tidx, timeEntry{ts: maxTS, rel: uint32(s.lastBase - s.base)})
	}
	s.mu.Unlock()
}

// lookup returns the position from which to scan for offset.
func (s *segment) lookup(offset int64) int64 {
	if offset <= s.base {
		return 0
	}
	rel := offset - s.base
	if rel > math.MaxUint32 {
		rel = math.MaxUint32
	}
	s.mu.RLock()
	pos := lookupPos(s.idx, uint32(rel))
	s.mu.RUnlock()
	return pos
}

// lookupTime returns the position from which to scan for the first batch with
// max timestamp >= ts.
func (s *segment) lookupTime(ts int64) int64 {
	s.mu.RLock()
	rel, ok := lookupTime(s.tidx, ts)
	s.mu.RUnlock()
	if !ok {
		return 0
	}
	return s.lookup(s.base + int64(rel))
}

// persistIndexes writes both index files atomically. The caller must have
// fsynced the log first: index files on disk mean "this log is durable".
func (s *segment) persistIndexes() error {
	s.mu.RLock()
	idx, tidx := encodeIndex(s.idx), encodeTimeIndex(s.tidx)
	s.mu.RUnlock()
	if err := WriteFileAtomic(s.path(indexSuffix), idx); err != nil {
		return err
	}
	if err := WriteFileAtomic(s.path(timeIndexSuffix), tidx); err != nil {
		return err
	}
	s.persisted = true
	return nil
}

// removeIndexFiles drops index files that no longer describe a durable log
// (the segment became the active one again).
func (s *segment) removeIndexFiles() error {
	s.persisted = false
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.Remove(s.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("storage: remove %s: %w", s.path(suf), err)
		}
	}
	return nil
}

// remove closes the segment and deletes its files. A FileRange still
// holding the file keeps reading the unlinked inode until it is released.
func (s *segment) remove() error {
	s.closeFile()
	var first error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := os.Remove(s.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = fmt.Errorf("storage: remove %s: %w", s.path(suf), err)
		}
	}
	return first
}

// readHeader reads the batch header prefix at pos into buf (len(buf) bytes,
// at least scanHeaderSize) and checks that the batch fits before limit. It is
// the only way readers walk a segment, so corrupt index positions or files
// changed underneath surface as errors instead of garbage.
func (s *segment) readHeader(buf []byte, pos, limit int64) (base int64, next int64, size int64, err error) {
	if limit-pos < BatchHeaderSize {
		return 0, 0, 0, fmt.Errorf("storage: %s: %d trailing bytes at position %d: %w", s.path(logSuffix), limit-pos, pos, io.ErrUnexpectedEOF)
	}
	if _, err := s.f.ReadAt(buf, pos); err != nil {
		return 0, 0, 0, fmt.Errorf("storage: read %s at %d: %w", s.path(logSuffix), pos, err)
	}
	return s.parseHeader(buf, pos, limit)
}

// parseHeader checks the batch header in buf (at file position pos, with
// the segment's data ending at limit).
func (s *segment) parseHeader(buf []byte, pos, limit int64) (base int64, next int64, size int64, err error) {
	be := binary.BigEndian
	base = int64(be.Uint64(buf[offBaseOffset:]))
	size = int64(int32(be.Uint32(buf[offBatchLength:]))) + batchLengthOverhead
	delta := int64(int32(be.Uint32(buf[offLastDelta:])))
	if size < BatchHeaderSize || size > limit-pos || delta < 0 || base < s.base {
		return 0, 0, 0, fmt.Errorf("storage: %s: bad batch header at position %d", s.path(logSuffix), pos)
	}
	return base, base + delta + 1, size, nil
}

// headerReader reads the batch headers of one segment through a buffer: a
// walk over many small batches (producer-state rebuild, trusted open) costs
// one pread per 64 KiB instead of one per batch.
type headerReader struct {
	s   *segment
	buf []byte
	off int64 // file position of buf[0]
	n   int   // valid bytes in buf
}

var headerBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func newHeaderReader(s *segment) *headerReader {
	return &headerReader{s: s, buf: *headerBufs.Get().(*[]byte)}
}

// release returns the buffer to its pool; r must not be used after.
func (r *headerReader) release() {
	b := r.buf
	headerBufs.Put(&b)
	r.buf = nil
}

// header is readHeader through the buffer; hdr is valid until the next call.
func (r *headerReader) header(pos, limit int64) (hdr []byte, base, next, size int64, err error) {
	if limit-pos < BatchHeaderSize {
		return nil, 0, 0, 0, fmt.Errorf("storage: %s: %d trailing bytes at position %d: %w", r.s.path(logSuffix), limit-pos, pos, io.ErrUnexpectedEOF)
	}
	if pos < r.off || pos+BatchHeaderSize > r.off+int64(r.n) {
		want := min(int64(len(r.buf)), limit-pos)
		n, err := r.s.f.ReadAt(r.buf[:want], pos)
		if int64(n) < BatchHeaderSize {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			r.n = 0
			return nil, 0, 0, 0, fmt.Errorf("storage: read %s at %d: %w", r.s.path(logSuffix), pos, err)
		}
		r.off, r.n = pos, n
	}
	hdr = r.buf[pos-r.off : pos-r.off+BatchHeaderSize]
	base, next, size, err = r.s.parseHeader(hdr, pos, limit)
	return hdr, base, next, size, err
}
