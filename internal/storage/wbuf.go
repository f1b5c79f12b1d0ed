package storage

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Write coalescing. Small batches are not written to the segment file one
// pwrite each: appendLocked copies them into the log's write buffer (wbuf),
// and the buffer is written with one pwrite when the log is synced (the group
// committer's round: Sync or Unsynced), before a roll, when it fills, or when
// a reader asks for data that is still only in it. With many small produce
// requests that turns one pwrite per batch into one per partition per round,
// and lets the committer's WAL round take the round's bytes from memory
// instead of reading them back from the file (Unsynced).
//
// Durability is unchanged: data is reported durable only by Sync (which
// writes the buffer, then fsyncs) or MarkDurable after the committer's WAL
// fdatasync covered it. Data made durable through the WAL may stay in the
// buffer (up to wbufLazyMax) rather than be written to the segment file each
// round: the WAL holds it until a checkpoint, which Syncs (writes, fsyncs)
// the log first, and replay restores it after a crash.
//
// Readers never see less than before: every read path first writes the
// buffer if it asks for offsets beyond what is in the file (flushFor). A
// fetch reading up to the high watermark does so when the high watermark
// is ahead of the file, so consumers pay the write, producers alone do not.
//
// A full disk: a buffered batch's space is reserved in the file at append
// time (fallocate, KEEP_SIZE), so a full disk still fails the append itself,
// cleanly, with ErrDiskFull, and never the later write of an accepted batch.
// Where fallocate is not supported the log writes every batch through. The
// start of every segment (its first reserveAfter bytes) is not reserved in
// its own file: a batch there is held against Options.Headroom (a ballast
// file that gives up its space should the later write find the disk full,
// headroom.go), or written through when that has no room (a write into the
// page cache fails at once on a full disk). A fallocate per first append,
// with thousands of partitions each receiving a few records, was journal
// work that produce waited behind (bench/RESULTS.md §18).

const (
	// coalesceMaxBatch: batches at least this big are written at once
	// (after the buffer): copying them gains nothing.
	coalesceMaxBatch = 64 << 10
	// wbufMax: the buffer is written out before it would exceed this.
	wbufMax = 1 << 20
	// File space is reserved minReserve (one page) at a time at first,
	// twice as much at each reservation after that up to maxReserve: a
	// busy partition makes one fallocate call per MiB, while a quiet log
	// (or one of thousands of partitions) holds at most about as much
	// space beyond its end as it holds data, never more than 4 KiB when it
	// holds less than that. The reservation left beyond the end is released
	// when the segment is sealed or the log closed (releaseLocked).
	minReserve = 4 << 10
	maxReserve = 1 << 20
	// reserveAfter: batches ending within a segment's first 64 KiB are
	// not reserved in the file (headroom or write-through, above);
	// reservations begin beyond.
	reserveAfter = 64 << 10
	// wbufLazyMax: data durable through the WAL stays in the buffer until
	// it holds this much (or a reader, Sync, roll or Close writes it).
	wbufLazyMax = 128 << 10
	// lazyHeldMax bounds the buffer memory all logs together hold for
	// data durable through the WAL: with thousands of partitions each
	// holding a few records, 64 KiB buffers per partition would be
	// gigabytes. Beyond it a WAL round's tail is written out at once.
	lazyHeldMax = 64 << 20
)

// reserveSpace is fallocKeepSize; tests replace it to run the log as on a
// filesystem (or OS) without reservations.
var reserveSpace = fallocKeepSize

// Write buffers come from pools by power-of-two capacity, minWbuf to
// wbufMax: a partition receiving a few hundred bytes per round holds a
// buffer of about that size, not 64 KiB (with thousands of partitions
// holding WAL-durable data, the size decides how many fit lazyHeldMax).
const (
	minWbufShift = 10 // 1 KiB
	maxWbufShift = 20 // wbufMax
	minWbuf      = 1 << minWbufShift
)

var wbufPools [maxWbufShift - minWbufShift + 1]sync.Pool

// wbufClass is the pool index of the smallest class holding n bytes.
func wbufClass(n int) int {
	c := 0
	for minWbuf<<c < n && c < len(wbufPools)-1 {
		c++
	}
	return c
}

// getWbuf returns an empty buffer with capacity at least n (at most wbufMax).
func getWbuf(n int) []byte {
	c := wbufClass(n)
	if b, ok := wbufPools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, minWbuf<<c)
}

// putWbuf returns b to its class's pool if its capacity is one of them.
func putWbuf(b []byte) {
	c := wbufClass(cap(b))
	if cap(b) != minWbuf<<c {
		return
	}
	b = b[:0]
	wbufPools[c].Put(&b)
}

// lazyHeld is the buffer capacity, over all logs, held for data made
// durable through the WAL and not yet written (Log.lazyCap each).
var lazyHeld atomic.Int64

// holdLazyLocked counts the log's buffer as holding WAL-durable data and
// reports whether it may stay buffered under lazyHeldMax.
func (l *Log) holdLazyLocked() bool {
	delta := int64(cap(l.wbuf) - l.lazyCap)
	if delta > 0 && lazyHeld.Load()+delta > lazyHeldMax {
		return false
	}
	lazyHeld.Add(delta)
	l.lazyCap = cap(l.wbuf)
	return true
}

// dropLazyLocked uncounts the log's buffer (written out or dropped).
func (l *Log) dropLazyLocked() {
	if l.lazyCap != 0 {
		lazyHeld.Add(-int64(l.lazyCap))
		l.lazyCap = 0
	}
}

// bufferLocked copies batch (at logical position pos of the active segment,
// base offset base) into the write buffer. ok=false means the batch must be
// written through instead (coalescing unavailable or not worth it).
func (l *Log) bufferLocked(batch []byte, pos, base int64, now time.Time) (ok bool, err error) {
	if l.noReserve || len(batch) >= coalesceMaxBatch {
		return false, nil
	}
	if len(l.wbuf)+len(batch) > wbufMax {
		if err := l.flushLocked(); err != nil {
			return false, err
		}
	}
	if l.inHeadLocked(pos, len(batch)) && l.opts.Headroom.take(int64(len(batch))) {
		l.unreserved += int64(len(batch)) // the headroom file stands for it
	} else if reserved, err := l.reserveForLocked(pos, len(batch), now); !reserved {
		return false, err // err nil: reservation unsupported, write through
	}
	if l.wbuf == nil {
		l.wbuf = getWbuf(len(batch))
	}
	if len(l.wbuf) == 0 {
		l.wbufFrom = base
	}
	if n := len(l.wbuf) + len(batch); n > cap(l.wbuf) {
		// Grow to the next class that holds it (never past wbufMax),
		// giving the old buffer back.
		grown := append(getWbuf(n), l.wbuf...)
		putWbuf(l.wbuf)
		l.wbuf = grown
	}
	l.wbuf = append(l.wbuf, batch...)
	return true, nil
}

// reserveForLocked reserves file space for n bytes at position pos of the
// active segment. It reports false with ErrDiskFull when the disk is full,
// and false with no error when the filesystem cannot reserve or the batch
// ends within the segment's first reserveAfter bytes (the batch is then
// written through).
func (l *Log) reserveForLocked(pos int64, n int, now time.Time) (bool, error) {
	if l.noReserve || l.inHeadLocked(pos, n) {
		return false, nil
	}
	if err := l.reserveLocked(pos + int64(n)); err != nil {
		if l.noReserve {
			return false, nil
		}
		return false, l.diskFullLocked(err, n, now)
	}
	return true, nil
}

// inHeadLocked reports whether n bytes at position pos end within the
// active segment's first reserveAfter bytes, before any reservation.
func (l *Log) inHeadLocked(pos int64, n int) bool {
	return pos+int64(n) <= reserveAfter && l.reserved == 0
}

// reserveLocked makes sure the active segment file has space allocated up to
// position need. It sets noReserve (and returns an error) when the
// filesystem cannot reserve space.
func (l *Log) reserveLocked(need int64) error {
	if need <= l.reserved {
		return nil
	}
	seg := l.active
	from := max(l.reserved, seg.size.Load())
	chunk := max(l.reserveChunk, minReserve)
	// End reservations on a page boundary: filesystems allocate whole
	// blocks, so a reservation ending mid-page would cost a page more.
	const page = 4 << 10
	upTo := max(need, min(max((need+page-1)&^(page-1), (from+chunk)&^(page-1)), l.opts.SegmentBytes))
	err := reserveSpace(seg.f.Fd(), from, upTo-from)
	if isNoSpace(err) && upTo > need {
		// Not a whole chunk left: take just what this batch needs.
		upTo = need
		err = reserveSpace(seg.f.Fd(), from, upTo-from)
	}
	if err != nil {
		if !isNoSpace(err) {
			l.noReserve = true
			l.logger().Info("storage: cannot reserve file space (fallocate); writing every batch through", "err", err)
		}
		return err
	}
	l.reserved = upTo
	l.reserveChunk = min(2*chunk, maxReserve)
	return nil
}

// releaseLocked gives back the file space reserved beyond the active
// segment's end, once nothing more will be appended to it (roll, Close):
// ftruncate to the current size frees blocks allocated past the end by
// FALLOC_FL_KEEP_SIZE (ext4, XFS, btrfs, tmpfs) without touching the data.
// Call it after flushLocked. A failure only leaves the space reserved. The
// next segment's reservations start at minReserve again, so every segment's
// allocation stays proportionate to its data.
func (l *Log) releaseLocked() {
	seg := l.active
	size := seg.size.Load()
	reserved := l.reserved
	l.reserved, l.reserveChunk = 0, 0 // the next segment starts small again
	if reserved <= size {
		return
	}
	var err error
	if seg.f != nil {
		err = seg.f.Truncate(size)
	} else {
		err = os.Truncate(seg.path(logSuffix), size) // files released (release.go)
	}
	if err != nil {
		l.logger().Debug("storage: could not release reserved file space", "path", seg.path(logSuffix), "err", err)
	}
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// diskFullLocked turns a no-space error into ErrDiskFull, warning at most
// every 10 s (clients can trigger this in a loop).
func (l *Log) diskFullLocked(err error, n int, now time.Time) error {
	if now.Sub(l.lastFullWarn) > 10*time.Second {
		l.lastFullWarn = now
		l.logger().Warn("storage: disk full, appends rejected until space returns", "path", l.active.f.Name(), "bytes", n)
	}
	return fmt.Errorf("%w: %s: %v", ErrDiskFull, l.active.f.Name(), err)
}

// flushLocked writes the buffer to the active segment and publishes its
// size. A failed write fails the log: the batches in it were accepted (their
// offsets assigned) and cannot be taken back.
func (l *Log) flushLocked() error {
	if len(l.wbuf) == 0 {
		return nil
	}
	if l.failed != nil {
		return l.failed
	}
	if err := l.ensureFilesLocked(); err != nil {
		return err
	}
	seg := l.active
	pos := seg.size.Load()
	_, err := seg.f.WriteAt(l.wbuf, pos)
	if err != nil && l.unreserved > 0 && isNoSpace(err) && l.opts.Headroom.spend(l.unreserved) {
		// Held against the headroom, which gave up as much: again.
		l.unreserved = 0
		_, err = seg.f.WriteAt(l.wbuf, pos)
	}
	if err != nil {
		return l.failLocked("write", seg.f.Name(), err)
	}
	l.opts.Headroom.give(l.unreserved)
	l.unreserved = 0
	seg.size.Store(pos + int64(len(l.wbuf)))
	l.written.Store(l.end.Load())
	l.kickLocked(seg, pos+int64(len(l.wbuf)))
	l.wbufSent = 0
	l.dropLazyLocked()
	putWbuf(l.wbuf)
	l.wbuf = nil
	return nil
}

// wbufTailLocked returns the buffered bytes from offset from to the log end,
// if from is where the buffer, or its part not yet handed to the WAL, starts.
func (l *Log) wbufTailLocked(from int64) ([]byte, bool) {
	switch {
	case len(l.wbuf) == 0:
		return nil, false
	case from == l.wbufFrom:
		return l.wbuf, true
	case l.wbufSent > 0 && from == l.wbufSentTo && l.wbufSent < len(l.wbuf):
		return l.wbuf[l.wbufSent:], true
	}
	return nil, false
}

// flushFor writes the buffer if offsets below upTo are only in it. Readers
// call it before reading, so they see every appended batch.
func (l *Log) flushFor(upTo int64) error {
	w := l.written.Load()
	if upTo <= w || w >= l.end.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil
	}
	return l.flushLocked()
}
