package storage

import (
	"fmt"
	"os"
	"sync/atomic"
)

// File ranges (ReadFile): a fetch can send batches from the segment file
// with sendfile instead of reading them into memory first. The response is
// written later, on the connection's writer goroutine, possibly after
// retention, compaction or Close dropped the segment; so a FileRange holds
// a reference on its segment's file, and the file is closed when the
// segment and every range are done with it (fileRefs). A removed segment's
// file is unlinked at once but stays readable through the open descriptor
// until then, so the bytes a range names cannot change under it, except by
// Truncate, which cuts a file in place: it bumps the segment's cut counter
// first, and a range whose counter moved is no longer Intact.

// fileRefs counts the holders of a segment's open file: the segment itself
// (one reference from creation until closeFile) and every FileRange handed
// out. The last release closes the file.
type fileRefs struct {
	n    atomic.Int64
	cuts atomic.Uint64 // Truncate calls that cut this file
}

// acquire takes a reference for a range. The caller holds readMu shared,
// so the segment's own reference is still there (files are closed only
// with readMu held exclusively) and n cannot be 0.
func (s *segment) acquire() {
	if s.refs.n.Add(1) <= 1 {
		panic(fmt.Sprintf("storage: reference taken on closed segment file %s", s.f.Name()))
	}
}

func (s *segment) release() {
	switch n := s.refs.n.Add(-1); {
	case n == 0:
		_ = s.f.Close()
	case n < 0:
		panic(fmt.Sprintf("storage: segment file %s released more often than acquired", s.f.Name()))
	}
}

// closeFile drops the segment's own reference: the file closes now, or
// when the last FileRange naming it is released.
func (s *segment) closeFile() { s.release() }

// FileRange is a run of whole batches in a segment file: Len bytes at
// Offset. It holds the file open until Release, which must be called
// exactly once.
type FileRange struct {
	seg  *segment
	off  int64
	n    int64
	cuts uint64 // seg.refs.cuts when the range was read
}

// File is the open segment file; valid until Release. Read it with ReadAt
// or pread-style calls only: the file position is shared.
func (r FileRange) File() *os.File { return r.seg.f }

// Offset is the position of the range's first byte in File.
func (r FileRange) Offset() int64 { return r.off }

// Len is the range's size in bytes.
func (r FileRange) Len() int64 { return r.n }

// Intact reports whether the file still holds the bytes the range was read
// from: false after a Truncate that may have cut or rewritten them. Check
// it after sending the range: bytes sent from a range found not Intact
// then may not be the batches that were read.
func (r FileRange) Intact() bool { return r.seg.refs.cuts.Load() == r.cuts }

// Release gives up the range's reference on its file.
func (r FileRange) Release() { r.seg.release() }

// AppendTo appends the range's bytes to dst (the copying path).
func (r FileRange) AppendTo(dst []byte) ([]byte, error) {
	return readRange(r.seg, dst, r.off, r.off+r.n)
}

// ReleaseRanges releases every range in rs.
func ReleaseRanges(rs []FileRange) {
	for _, r := range rs {
		r.Release()
	}
}

// ReadFile is Read without the copy: it returns the same batches as ranges
// of the segment files, appended to dst, plus their total size in bytes and
// record count. Batches still in the write buffer are written to the file
// first, as for Read. The caller must Release every range returned; on an
// error none is returned.
func (l *Log) ReadFile(offset int64, maxBytes int, upTo int64, dst []FileRange) ([]FileRange, int, int, error) {
	total, records, was := 0, 0, len(dst)
	err := l.walk(offset, maxBytes, upTo, func(s *segment, from, to int64, recs int) error {
		s.acquire()
		dst = append(dst, FileRange{seg: s, off: from, n: to - from, cuts: s.refs.cuts.Load()})
		total += int(to - from)
		records += recs
		return nil
	})
	if err != nil {
		ReleaseRanges(dst[was:])
		return dst[:was], 0, 0, err
	}
	return dst, total, records, nil
}
