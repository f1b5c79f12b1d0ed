package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096
)

var (
	// ErrOffsetOutOfRange: the requested offset is below the log start or
	// above the log end (Kafka's OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrLogFailed: a write or fsync failed earlier. The log accepts no more
	// writes because the state of the file on disk is unknown; the broker must
	// stop serving the partition and reopen it (which recovers).
	ErrLogFailed = errors.New("storage: log failed")
	// ErrDiskFull: an append found no space. Nothing was written and the
	// log stays usable; appends succeed again once space returns.
	ErrDiskFull = errors.New("storage: no space left on device")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("storage: log closed")
	// ErrBadBatch: Append was given bytes that are not one v2 batch.
	ErrBadBatch = errors.New("storage: malformed batch passed to append")
)

// Options configure a Log. The zero value is usable.
type Options struct {
	// SegmentBytes: roll when the active segment would exceed this size.
	// 0 means DefaultSegmentBytes; at most math.MaxInt32 because index
	// positions are 32-bit.
	SegmentBytes int64
	// SegmentAge: roll when the active segment's first append is older than
	// this. 0 means DefaultSegmentAge.
	SegmentAge time.Duration
	// IndexIntervalBytes: log bytes between sparse index entries. 0 means
	// DefaultIndexIntervalBytes.
	IndexIntervalBytes int
	// Fsync makes a segment file's data durable; nil means (*os.File).Sync.
	// Tests inject failures here (the fsync-error path must be exercised,
	// and no filesystem here can be made to fail an fsync on demand).
	Fsync func(f *os.File) error
	// Logger receives recovery warnings and failures. nil discards.
	Logger *slog.Logger
	// DropBehind, when positive, drops a segment's data from the page cache
	// once it is fsynced and more than this many bytes behind the segment's
	// end (posix_fadvise DONTNEED; dropbehind.go). 0 keeps everything.
	DropBehind int64
	// DeferRecoverySync: recovery after an unclean shutdown does not fsync
	// the tail it validated (nor the directory); the caller makes the
	// filesystem durable once (SyncFS, then SyncPoint) before anything
	// relies on it: the WAL replay at start opens thousands of partitions
	// this way and resets the WAL only after one syncfs.
	DeferRecoverySync bool
	// Created: the directory holds just what CreateFirstSegment made, and
	// nothing has touched it since (the caller made it in this process):
	// Open skips the directory listing and every checkpoint read and opens
	// the empty first segment. The first append to each of 100,000 new
	// partitions took about 30 system calls to learn nothing
	// (bench/RESULTS.md §18). Wrong only if something else wrote the
	// directory; never set it for a directory found on disk.
	Created bool
	// Headroom, if not nil, stands for the file space of batches buffered
	// within a segment's first bytes (headroom.go); nil: every buffered
	// batch is reserved in its own file.
	Headroom *Headroom
}

// Validate reports settings that cannot work.
func (o Options) Validate() error {
	switch {
	case o.SegmentBytes < 0 || o.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("storage: SegmentBytes %d outside [0, %d]", o.SegmentBytes, math.MaxInt32)
	case o.SegmentAge < 0:
		return fmt.Errorf("storage: SegmentAge %v is negative", o.SegmentAge)
	case o.IndexIntervalBytes < 0:
		return fmt.Errorf("storage: IndexIntervalBytes %d is negative", o.IndexIntervalBytes)
	case o.DropBehind < 0:
		return fmt.Errorf("storage: DropBehind %d is negative", o.DropBehind)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentAge == 0 {
		o.SegmentAge = DefaultSegmentAge
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Log is one partition's segmented log. All methods are safe for concurrent
// use. Lock order: syncMu, then readMu, then mu, then segment.mu.
type Log struct {
	dir  string
	opts Options
	lg   atomic.Pointer[slog.Logger] // made on first use (logger)

	// syncMu serialises Sync, Truncate and Close. It is held across fsyncs,
	// which is why it is not the append lock: appends continue meanwhile.
	syncMu sync.Mutex
	// readMu is held shared by readers for a whole read; Truncate and Close
	// take it exclusively before shrinking or closing files.
	readMu sync.RWMutex

	// mu is the append lock and guards the fields below it.
	mu           sync.Mutex
	active       *segment
	pending      []*segment // rolled since the last Sync, not yet fsynced
	dirNeedsSync bool       // a segment file was created since the last Sync
	// staleMarker: a clean-shutdown marker is on disk that no longer
	// describes the log (appended to since; see unmarkAppendLocked):
	// Close overwrites it, a roll or truncate removes it first.
	staleMarker  bool
	failed       error       // non-nil once a write or fsync failed
	isFailed     atomic.Bool // failed != nil, readable without mu (Failed)
	lastFullWarn time.Time   // rate-limits the disk-full warning
	// Write coalescing (wbuf.go): batches appended to the active segment
	// but not yet written to its file, starting at its published size.
	wbuf     []byte
	wbufFrom int64 // base offset of the first batch in wbuf
	// wbuf[:wbufSent] was handed to the committer's WAL by Unsynced;
	// wbufSentTo is the offset that follows it.
	wbufSent     int
	wbufSentTo   int64
	lazyCap      int   // cap(wbuf) counted in lazyHeld (wbuf.go)
	reserved     int64 // active segment file space reserved (fallocate) up to here
	reserveChunk int64 // size of the next reservation
	noReserve    bool  // fallocate unsupported: write every batch through
	unreserved   int64 // bytes of wbuf held against opts.Headroom instead

	segs    atomic.Pointer[[]*segment] // immutable snapshot, replaced on roll/truncate/deletion
	start   atomic.Int64               // log start offset: >= first segment base, persisted when moved
	end     atomic.Int64               // log end offset
	written atomic.Int64               // offset up to which batches are in the files (< end while wbuf holds some)
	durable atomic.Int64               // offset up to which data is durable: fsynced here or in a WAL
	synced  atomic.Int64               // offset up to which the segment files are fsynced (<= durable)
	// cleanedTo: offset below which the log was compacted (persisted in
	// cleaner-offset before any swap); offset gaps are valid only below it.
	cleanedTo atomic.Int64
	closed    atomic.Bool
	// marked: the clean-shutdown marker on disk describes the log exactly
	// (opened clean, or Checkpoint); cleared by the first change
	// (unmarkAppendLocked, unmarkLocked). Guarded by mu.
	marked bool
	// untouched: created empty by this Open and not written since; Close
	// has nothing to make durable (a power loss that takes the empty
	// segment back leaves a directory Open starts again the same way).
	untouched bool
	// released: the segment files are closed, the state kept
	// (release.go); changed only with syncMu, readMu and mu held.
	released atomic.Bool
}

// Open opens the partition log in dir, creating the directory if needed, and
// recovers it: after a crash the tail segment is validated batch by batch and
// truncated at the first torn or corrupt batch. Everything that survives
// recovery is treated as durable.
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	// A Created directory exists (its segment's open fails otherwise).
	if !opts.Created {
		if err := createDir(dir); err != nil {
			return nil, err
		}
	}
	l := &Log{
		dir:  dir,
		opts: opts,
	}
	if err := l.recover(); err != nil {
		return nil, err
	}
	if err := l.syncUnindexed(); err != nil {
		closeAll(*l.segs.Load())
		return nil, err
	}
	l.loadStart()
	return l, nil
}

// createDir makes dir if it does not exist, durably.
func createDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: create %s: %w", dir, err)
	}
	// The new directory entry must survive a power loss like the data.
	return SyncDir(filepath.Dir(dir))
}

// syncUnindexed fsyncs the sealed segments recovery found without index
// files. Index files are written only after a Sync fsynced the segment, so
// such a segment may hold data that was durable only in the group
// committer's WAL (a kill -9 keeps it in the page cache, so replay finds it
// present and skips it, then resets the WAL). Open reports everything it
// recovered as durable, so make it so; recovery itself fsyncs only the tail.
func (l *Log) syncUnindexed() error {
	segs := *l.segs.Load()
	for _, s := range segs[:len(segs)-1] {
		if s.persisted {
			continue
		}
		if err := l.fsync(s.f); err != nil {
			return fmt.Errorf("storage: fsync %s: %w", s.f.Name(), err)
		}
		// Durable and sealed now, so its index may be written; this also
		// makes it deletable by retention (only persisted segments are).
		s.seal()
		l.persistSealed([]*segment{s})
	}
	return nil
}

func (l *Log) fsync(f *os.File) error {
	if l.opts.Fsync != nil {
		return l.opts.Fsync(f)
	}
	return f.Sync()
}

// logger is the log's logger, made on its first use: most of the
// thousands of logs a broker opens never log, and slog's With was 4% of
// the CPU of opening them.
func (l *Log) logger() *slog.Logger {
	if lg := l.lg.Load(); lg != nil {
		return lg
	}
	l.lg.CompareAndSwap(nil, l.opts.Logger.With("component", "storage", "dir", l.dir))
	return l.lg.Load()
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// usableLocked returns why writes are refused, if they are.
func (l *Log) usableLocked() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.failed
}

// failLocked marks the log failed after an I/O error on path. The error is
// logged once: every later write returns it without logging.
func (l *Log) failLocked(op, path string, err error) error {
	if l.failed == nil {
		// The buffer is never written now: stop holding its space.
		l.opts.Headroom.give(l.unreserved)
		l.unreserved = 0
		l.failed = fmt.Errorf("%w: %s %s: %v", ErrLogFailed, op, path, err)
		l.isFailed.Store(true)
		l.logger().Error("storage: log failed, refusing further writes", "op", op, "path", path, "err", err)
	}
	return l.failed
}

// Append writes one complete, validated v2 batch at the log end and returns
// its base offset. The base offset is written into batch. The data reaches the
// page cache only; Sync makes it durable.
func (l *Log) Append(batch []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(batch, time.Now(), false)
}

// AppendAt appends a batch at its own base offset, which must not be below
// the log end: a follower's copy of its leader's batches, offsets kept (a
// compacted leader's log may skip offsets, and so does the copy). A batch
// below the log end answers ErrBadBatch.
//
// A batch beyond the log end leaves a gap, which recovery accepts only below
// the cleaned offset (doc.go): the cleaned offset is raised past the batch,
// durably, before it is appended. Appends to one log are serialised by its
// caller (the partition lock), so the end read here is the end appended at.
func (l *Log) AppendAt(batch []byte) (int64, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil || h.LastOffsetDelta < 0 || h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)-1 {
		return -1, ErrBadBatch
	}
	if h.BaseOffset > l.end.Load() {
		l.syncMu.Lock()
		err := l.advanceCleaned(h.BaseOffset + 1)
		l.syncMu.Unlock()
		if err != nil {
			return -1, fmt.Errorf("storage: allow an offset gap before %d: %w", h.BaseOffset, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(batch, time.Now(), true)
}

// GapAllowed reports whether a batch at base may follow the log end with a
// gap: base is below the cleaned offset (AppendAt raised it for a copy's
// gap, or compaction left gaps there). The WAL replay asks before putting
// back such a batch.
func (l *Log) GapAllowed(base int64) bool { return base < l.cleanedTo.Load() }

// AppendBatches appends several batches under one lock acquisition and
// returns the base offset of the first. On error, batches before the failing
// one stay appended.
func (l *Log) AppendBatches(batches [][]byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := int64(-1)
	now := time.Now()
	for i, b := range batches {
		base, err := l.appendLocked(b, now, false)
		if err != nil {
			return first, err
		}
		if i == 0 {
			first = base
		}
	}
	return first, nil
}

func (l *Log) appendLocked(batch []byte, now time.Time, keepBase bool) (int64, error) {
	if err := l.usableLocked(); err != nil {
		return -1, err
	}
	if err := l.ensureFilesLocked(); err != nil {
		return -1, err
	}
	l.unmarkAppendLocked()
	h, err := ParseBatchHeader(batch)
	if err != nil || h.Size() != len(batch) || h.Magic != 2 || h.LastOffsetDelta < 0 {
		return -1, ErrBadBatch
	}
	base := l.end.Load()
	if keepBase {
		if h.BaseOffset < base || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)-1 {
			return -1, ErrBadBatch
		}
		if h.BaseOffset > base && h.BaseOffset+int64(h.LastOffsetDelta)-l.active.base > math.MaxUint32 {
			// Offsets within a segment are 32-bit from its base: a
			// gap that far starts a segment at the batch.
			if err := l.rollAtLocked(h.BaseOffset); err != nil {
				return -1, err
			}
		}
		base = h.BaseOffset
	}
	if err := l.maybeRollLocked(int64(len(batch)), base+int64(h.LastOffsetDelta), now); err != nil {
		return -1, err
	}
	seg := l.active
	SetBaseOffset(batch, base)
	h.BaseOffset = base
	pos := seg.size.Load() + int64(len(l.wbuf))
	buffered, err := l.bufferLocked(batch, pos, base, now)
	if err != nil {
		return -1, err
	}
	if buffered {
		l.publishLocked(seg, &h, pos, now)
		return base, nil
	}
	if err := l.flushLocked(); err != nil {
		return -1, err
	}
	// Reserve the space first, as for buffered batches: a full disk then
	// fails here, before any byte is written, and ext4 allocates the
	// blocks once per MiB instead of delaying allocation page by page
	// (broker CPU per MB 10% lower, bench/RESULTS.md §3).
	if _, err := l.reserveForLocked(pos, len(batch), now); err != nil {
		return -1, err
	}
	if _, err := seg.f.WriteAt(batch, pos); err != nil {
		// Part of the batch may be on disk past size. A full disk is an
		// operating condition, not corruption: cut the partial bytes off
		// and keep the log usable, so producing resumes when space
		// returns. Any other write error, or a failed cut, fails the log.
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			if terr := seg.f.Truncate(pos); terr == nil {
				if now.Sub(l.lastFullWarn) > 10*time.Second { // clients can trigger this in a loop
					l.lastFullWarn = now
					l.logger().Warn("storage: disk full, appends rejected until space returns", "path", seg.f.Name(), "bytes", len(batch))
				}
				return -1, fmt.Errorf("%w: %s: %v", ErrDiskFull, seg.f.Name(), err)
			}
		}
		return -1, l.failLocked("write", seg.f.Name(), err)
	}
	// Publish the size before the index entry and the end offset, so any
	// position or offset a reader can learn is backed by complete bytes.
	seg.size.Store(pos + int64(len(batch)))
	l.written.Store(h.NextOffset())
	l.kickLocked(seg, pos+int64(len(batch)))
	l.publishLocked(seg, &h, pos, now)
	return base, nil
}

// publishLocked records an appended batch at pos in the indexes and moves
// the log end. A buffered batch's position and offset are published before
// its bytes are in the file; readers wait for them with flushFor, and the
// file size they read to (segment.size) never covers unwritten bytes.
func (l *Log) publishLocked(seg *segment, h *BatchHeader, pos int64, now time.Time) {
	if seg.created.IsZero() {
		seg.created = now
	}
	seg.track(h, pos, l.opts.IndexIntervalBytes)
	l.end.Store(h.NextOffset())
}

// maybeRollLocked starts a new segment when the batch would overflow the
// active one by size, age or 32-bit relative offset.
func (l *Log) maybeRollLocked(n, lastOffset int64, now time.Time) error {
	seg := l.active
	size := seg.size.Load() + int64(len(l.wbuf))
	if size == 0 {
		return nil
	}
	if size+n <= l.opts.SegmentBytes && now.Sub(seg.created) < l.opts.SegmentAge &&
		lastOffset-seg.base <= math.MaxUint32 {
		return nil
	}
	return l.rollLocked()
}

// rollLocked seals the active segment and starts a new one at the log end.
func (l *Log) rollLocked() error { return l.rollAtLocked(l.end.Load()) }

// rollAtLocked seals the active segment and starts a new one at base (at
// least the log end; above it only for AppendAt's gaps).
func (l *Log) rollAtLocked(base int64) error {
	if err := l.unmarkLocked(); err != nil {
		return err
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	seg := l.active
	next, err := createSegment(l.dir, base)
	if err != nil {
		// Nothing changed yet, so the log stays usable; the caller retries.
		return err
	}
	l.releaseLocked()
	seg.seal()
	l.pending = append(l.pending, seg)
	l.dirNeedsSync = true
	l.active = next
	old := *l.segs.Load()
	segs := make([]*segment, len(old), len(old)+1)
	copy(segs, old)
	segs = append(segs, next)
	l.segs.Store(&segs)
	return nil
}

// Sync makes everything appended so far durable and returns the offset up to
// which data is durable. The fsync runs without the append lock. A failed
// fsync fails the log for good: after it the kernel may have dropped the dirty
// pages, so retrying could report data durable that is not.
func (l *Log) Sync() (int64, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return l.durable.Load(), err
	}
	if l.released.Load() && (l.end.Load() != l.synced.Load() || len(l.pending) > 0 || l.dirNeedsSync) {
		if err := l.ensureFilesLocked(); err != nil {
			l.mu.Unlock()
			return l.durable.Load(), err
		}
	}
	if err := l.flushLocked(); err != nil {
		l.mu.Unlock()
		return l.durable.Load(), err
	}
	end := l.end.Load()
	active := l.active
	pending := l.pending
	l.pending = nil
	dirSync := l.dirNeedsSync
	l.dirNeedsSync = false
	l.mu.Unlock()

	if end == l.synced.Load() && len(pending) == 0 && !dirSync {
		return l.durable.Load(), nil
	}
	if err := l.syncFiles(active, pending, dirSync); err != nil {
		return l.durable.Load(), err
	}
	l.synced.Store(end)
	l.MarkDurable(end)
	l.persistSealed(pending)
	return end, nil
}

// syncFiles fsyncs the given segments and, if asked, the directory. Called
// with syncMu held and mu not held.
func (l *Log) syncFiles(active *segment, pending []*segment, dirSync bool) error {
	for _, s := range append(pending, active) {
		size := s.size.Load() // written before the fsync: clean after it
		if err := l.fsync(s.f); err != nil {
			return l.fail("fsync", s.f.Name(), err)
		}
		l.dropBehind(s, size)
	}
	if dirSync {
		if err := SyncDir(l.dir); err != nil {
			return l.fail("fsync", l.dir, err)
		}
	}
	return nil
}

// syncFilesLocked is syncFiles for a caller holding mu (Checkpoint).
func (l *Log) syncFilesLocked(active *segment, pending []*segment, dirSync bool) error {
	for _, s := range append(pending, active) {
		if err := l.fsync(s.f); err != nil {
			return l.failLocked("fsync", s.f.Name(), err)
		}
	}
	if dirSync {
		if err := SyncDir(l.dir); err != nil {
			return l.failLocked("fsync", l.dir, err)
		}
	}
	return nil
}

func (l *Log) fail(op, path string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failLocked(op, path, err)
}

// persistSealed writes index files for sealed segments whose log is now
// durable. Failure is not fatal: a segment without valid index files is
// fully validated and re-indexed on the next Open.
func (l *Log) persistSealed(segs []*segment) {
	for _, s := range segs {
		if s.persisted {
			continue
		}
		if err := s.persistIndexes(); err != nil {
			l.logger().Warn("storage: writing segment index failed; it will be rebuilt on open", "path", s.path(indexSuffix), "err", err)
		}
	}
}

// MarkDurable records that everything below end is durable elsewhere (the
// group committer's write-ahead log fsynced it) although the segment files
// are not fsynced yet; a later Sync still fsyncs them. It never moves the
// durable offset backwards or past the log end.
func (l *Log) MarkDurable(end int64) {
	for {
		cur := l.durable.Load()
		if end <= cur || end > l.end.Load() {
			return
		}
		if l.durable.CompareAndSwap(cur, end) {
			return
		}
	}
}

// SyncedOffset is the offset up to which the segment files themselves are
// fsynced.
func (l *Log) SyncedOffset() int64 { return l.synced.Load() }

// Unsynced appends to dst the batches between the durable offset and the log
// end, for the caller to make durable in a write-ahead log, and returns them
// with the offset range they cover.
func (l *Log) Unsynced(dst []byte) (data []byte, from, to int64, err error) {
	// After a failed fsync the page cache may no longer hold what was
	// appended (Linux marks the pages clean and may drop them), so the tail
	// must not be copied into the WAL and reported durable. Only Sync fails
	// a log by fsync, and the committer calls Sync and Unsynced from the
	// same goroutine, so checking first is enough.
	l.mu.Lock()
	err = l.usableLocked()
	if err != nil {
		l.mu.Unlock()
		return dst, l.durable.Load(), l.durable.Load(), err
	}
	from, to = l.durable.Load(), l.end.Load()
	if from >= to {
		l.mu.Unlock()
		return dst, from, from, nil
	}
	if tail, ok := l.wbufTailLocked(from); ok {
		// The whole unsynced tail is still in the write buffer (the
		// usual case: earlier rounds covered the rest). Take it from
		// memory. It need not be in the segment file when the caller
		// marks it durable: the WAL holds it, and readers write the
		// buffer out first (flushFor).
		data = append(dst, tail...)
		l.wbufSent, l.wbufSentTo = len(l.wbuf), to
		if len(l.wbuf) >= wbufLazyMax || !l.holdLazyLocked() {
			err = l.flushLocked()
		}
		l.mu.Unlock()
		if err != nil {
			return dst, from, from, err
		}
		return data, from, to, nil
	}
	err = l.flushLocked()
	l.mu.Unlock()
	if err != nil {
		return dst, from, from, err
	}
	data, err = l.Read(from, math.MaxInt32, to, dst)
	if err != nil {
		return dst, from, from, err
	}
	// Read stops at batch boundaries below to; find where it really ended.
	if n := len(data) - len(dst); n > 0 {
		end := from
		if serr := SplitBatches(data[len(dst):], func(b []byte) error {
			h, _ := ParseBatchHeader(b)
			end = h.NextOffset()
			return nil
		}); serr != nil {
			return dst, from, from, serr
		}
		to = end
	}
	return data, from, to, nil
}

// DurableOffset is the offset up to which data is known to be durable: the
// broker's high watermark.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.end.Load() }

// LogStartOffset is the first offset still readable. It is never above the
// log end: a start persisted above what recovery found (data that was
// durable only in the WAL) applies again once the WAL replay restored it.
func (l *Log) LogStartOffset() int64 { return min(l.start.Load(), l.end.Load()) }

// Dirty reports whether data was appended since the last successful Sync.
func (l *Log) Dirty() bool { return l.end.Load() > l.durable.Load() }

// Size is the total size of the segment .log files in bytes.
func (l *Log) Size() int64 {
	_ = l.flushFor(math.MaxInt64) // a failure fails the log, which reports it
	var n int64
	for _, s := range *l.segs.Load() {
		n += s.size.Load()
	}
	return n
}

// Close syncs the log, writes all index files and a clean-shutdown marker so
// the next Open can skip validating the tail, and closes the files. A failed
// log is closed without a marker and Close returns its failure. Closing twice
// returns nil.
func (l *Log) Close() error { return l.close(nil) }

// close is Close, or CloseIn when b is not nil.
func (l *Log) close(b *CloseBatch) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil
	}
	if l.flushLocked() == nil && l.failed == nil { // a failure is in l.failed
		l.releaseLocked()
	}
	if l.staleMarker {
		// The marker on disk describes the log as it was: it is
		// overwritten below, or removed if the log failed.
		if l.failed != nil {
			_ = l.dropStaleMarkerLocked()
		}
		l.staleMarker = false
	}
	l.dropLazyLocked()
	if b == nil && !l.marked && !l.untouched && l.failed == nil {
		// Closing a changed log fsyncs its files.
		if err := l.ensureFilesLocked(); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	l.closed.Store(true)
	failed := l.failed
	active, pending, dirSync := l.active, l.pending, l.dirNeedsSync
	l.pending = nil
	marked := l.marked || l.untouched
	l.mu.Unlock()

	err := failed
	if err == nil && !marked && b == nil {
		err = l.syncFiles(active, pending, dirSync)
	}
	if err == nil && !marked { // a marked log is on disk as its marker says
		l.synced.Store(l.end.Load())
		l.durable.Store(l.end.Load())
		active.seal()
		if b == nil {
			l.persistSealed(pending)
			if merr := l.writeCleanMarker(active); merr != nil {
				// The data is durable; only the next open's trust is
				// lost (a torn marker fails its CRC).
				l.logger().Warn("storage: writing the clean-shutdown marker failed; the log is validated on open", "err", merr)
			}
		} else {
			err = l.persistIn(b, pending, active)
		}
	}
	l.readMu.Lock()
	defer l.readMu.Unlock()
	for _, s := range *l.segs.Load() {
		s.closeFile() // now, or when the last FileRange is released
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil && !errors.Is(err, ErrLogFailed) {
		l.logger().Warn("storage: close before delete failed", "err", err)
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("storage: delete %s: %w", l.dir, err)
	}
	return SyncDir(filepath.Dir(l.dir))
}

// SyncPoint is a Sync split in two around one filesystem-wide sync
// (SyncFS): PrepareSync writes the log's buffered batches to its segment
// file and notes what must become durable; the caller makes the whole
// filesystem durable once for many logs; Complete then records the log as
// synced, as Sync would have. Between the two the log's syncMu is held
// (appends continue), so no other Sync, Truncate, Close or start move runs.
type SyncPoint struct {
	l       *Log
	end     int64
	active  *segment
	pending []*segment
	dirSync bool
}

// PrepareSync is the first half of a Sync (see SyncPoint). On error
// nothing is held.
func (l *Log) PrepareSync() (*SyncPoint, error) {
	l.syncMu.Lock()
	l.mu.Lock()
	err := l.usableLocked()
	if err == nil {
		err = l.flushLocked()
	}
	if err != nil {
		l.mu.Unlock()
		l.syncMu.Unlock()
		return nil, err
	}
	sp := &SyncPoint{l: l, end: l.end.Load(), active: l.active, pending: l.pending, dirSync: l.dirNeedsSync}
	l.pending, l.dirNeedsSync = nil, false
	l.mu.Unlock()
	return sp, nil
}

// Complete finishes the Sync after the filesystem-wide sync returned
// fsErr: with nil the log's data up to the prepared end is durable; with
// an error (or SyncFS unsupported) the files are fsynced one by one here,
// so a failure is attributed to the log it hit and fails only that log.
func (sp *SyncPoint) Complete(fsErr error) error {
	l := sp.l
	defer l.syncMu.Unlock()
	if fsErr != nil {
		l.mu.Lock()
		err := l.ensureFilesLocked()
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if err := l.syncFiles(sp.active, sp.pending, sp.dirSync); err != nil {
			return err
		}
	}
	l.synced.Store(max(l.synced.Load(), sp.end))
	l.MarkDurable(sp.end)
	l.persistSealed(sp.pending)
	return nil
}
