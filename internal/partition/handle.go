package partition

// A Partition is cheap while nobody uses it: New touches no file, and the
// log, its indexes and the producer state are opened on first use and
// closed again when the broker's open-file budget (Files, files.go) needs
// the descriptors. Every method opens the partition if it is closed and
// holds it open for its own duration (mu shared), so a close (mu
// exclusive, taken by eviction only with TryLock) never pulls a log from
// under a running append or read. What the broker asks of every partition
// on every Metadata request (leader epoch, failed) and what the sweeps need
// to skip closed partitions is kept in the Partition itself.

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wal"
)

// openRetry is how long a failed open is remembered: requests in between
// get its error without touching the disk again.
const openRetry = time.Second

// ErrDeleted: the partition's topic was deleted.
var ErrDeleted = fmt.Errorf("%w: partition deleted", storage.ErrClosed)

// Partition is one partition of a topic, open or not.
type Partition struct {
	dir    string
	optsMu sync.Mutex // guards o's segment limits (SetSegmentLimits)
	o      Options
	files  *Files // nil: never evicted
	lg     *slog.Logger

	// mu is held shared by every use of st and exclusively to open or
	// close it. Eviction only ever TryLocks it.
	mu      sync.RWMutex
	st      *state // nil while closed
	deleted bool
	// fresh: Create made the directory in this process and nothing has
	// opened it since, so the first open knows it empty without reading
	// it (storage.Options.Created). Under mu; cleared by that open.
	fresh bool
	// closeErr is why the last close failed (a failed sync): Sync reports
	// it while closed, so the committer keeps the WAL that still holds
	// the data. Cleared by the next open.
	closeErr error
	openErr  error     // the last failed open, answered until retryAt
	retryAt  time.Time // under mu
	// summary of the log at the last close (nil: not opened since start),
	// so the retention sweep can tell without opening whether a closed
	// partition has anything to delete. Under mu.
	summary *closedLog
	// cleanedEnd is the log end after the cleaner's last look (-1: never):
	// a closed partition at that end has nothing new to compact.
	cleanedEnd atomic.Int64

	// closedSize is the segment bytes while closed (-1: not known yet),
	// so metrics scrapes do not list every closed partition's directory.
	closedSize atomic.Int64

	// hwCap bounds the high watermark of a replicated partition's leader
	// (SetHighWatermarkCap); math.MaxInt64 otherwise.
	hwCap atomic.Int64

	lastUse atomic.Int64 // useClock at the last use (eviction picks the oldest)
	epoch   atomic.Int32 // leader epoch, known while closed too
	failed  atomic.Bool  // the open log failed (it is never evicted then)
	log     atomic.Pointer[storage.Log]
}

// closedLog is what a closed partition's log looked like.
type closedLog struct {
	segs       []storage.SegmentInfo
	start, end int64
	// offsets: start, end (also the high watermark: a close makes the
	// log durable) and stable (the last stable offset) answer Offsets
	// while closed: a closed partition cannot change.
	offsets bool
	stable  int64
}

// New returns the partition stored in dir without touching the disk; it is
// opened on first use and, if files is not nil, closed again when files
// needs room.
func New(dir string, o Options, files *Files) *Partition {
	lg := o.Storage.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	p := &Partition{dir: dir, o: o, files: files, lg: lg}
	p.cleanedEnd.Store(-1)
	p.closedSize.Store(-1)
	p.hwCap.Store(math.MaxInt64)
	return p
}

// SetHighWatermarkCap bounds the high watermark by what the in-sync
// replicas have made durable (the broker's replication, leader side);
// math.MaxInt64 lifts the bound (not replicated, or no longer leader). The
// bound only ever rises while the partition is replicated.
func (p *Partition) SetHighWatermarkCap(v int64) { p.hwCap.Store(v) }

// Replicated reports whether a high watermark cap is set.
func (p *Partition) Replicated() bool { return p.hwCap.Load() != math.MaxInt64 }

// AppendReplica is state.AppendReplica (a follower's copy of its leader's
// batches).
func (p *Partition) AppendReplica(batches [][]byte, headers []storage.BatchHeader) (int, int64, error) {
	st, err := p.use()
	if err != nil {
		return 0, 0, err
	}
	defer p.mu.RUnlock()
	n, bytes, err := st.AppendReplica(batches, headers)
	if e := st.epochs.epoch(); e > p.epoch.Load() {
		p.epoch.Store(e) // the leader's epoch, for Metadata and epoch checks
	}
	return n, bytes, err
}

// LogEnd is the log end offset (-1 if the partition cannot be opened).
func (p *Partition) LogEnd() int64 {
	st, err := p.useState()
	if err != nil {
		return -1
	}
	defer p.mu.RUnlock()
	return st.log.LogEndOffset()
}

// Open opens (or creates) the partition in dir now, without producer
// state: the caller may replay the WAL into it (ReplayWALBatch), and the
// producer state is loaded by LoadProducers or the first use. It is never
// evicted.
func Open(dir string, o Options) (*Partition, error) {
	p := New(dir, o, nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.openLocked(false); err != nil {
		return nil, err
	}
	return p, nil
}

// Create makes the partition's directory and its partition.metadata
// without opening the log (CreateTopics, so that a full disk is reported
// then). Nothing is fsynced: the caller fsyncs the parent directory once
// for all partitions, and a lost metadata file is written again by the
// first open.
func (p *Partition) Create() error {
	// A directory an earlier topic of the same name left (its removal
	// failed) must not be adopted with its data: the first segment below
	// would sit beside its segments, and the metadata would name us.
	if _, err := claimDir(p.dir, p.o.TopicID, p.lg); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if err := os.Mkdir(p.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: create %s: %v", ErrStorage, p.dir, err)
	}
	if err := writeMeta(p.dir, p.o.TopicID, false); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	// The first segment file too: created on the first append instead, it
	// waits behind the produce path's journal commits (a file creation
	// took milliseconds under load), one partition after another.
	if err := storage.CreateFirstSegment(p.dir); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	// And an empty producer snapshot (read as none), which every close
	// of a changed partition overwrites in place: created here, not by
	// the first stop for thousands of partitions at once.
	if err := storage.CreateEmpty(filepath.Join(p.dir, SnapshotFile)); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.mu.Lock()
	// Opened meanwhile (a produce racing the creation): the files may
	// have changed, so the next open reads them.
	p.fresh = p.st == nil && p.summary == nil && !p.deleted
	p.mu.Unlock()
	return nil
}

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.o.Topic }

// Index is the partition's number within its topic.
func (p *Partition) Index() int32 { return p.o.Index }

// Dir is the partition's directory.
func (p *Partition) Dir() string { return p.dir }

// WALKey names the partition in the group committer's WAL.
func (p *Partition) WALKey() wal.Key { return wal.Key{TopicID: p.o.TopicID, Partition: p.o.Index} }

// IsOpen reports whether the partition's files are open now.
func (p *Partition) IsOpen() bool { return p.log.Load() != nil }

// useClock orders uses for eviction: it advances once a second and at
// every eviction pass (Files), so a use stamps the partition with a
// shared, rarely changing value. Reading a clock on every append cost
// about 100 ns of the produce path; a store only when the value changed
// also keeps the partition's cache line unshared across cores.
var useClock atomic.Int64

func (p *Partition) touch() {
	if now := useClock.Load(); p.lastUse.Load() != now {
		p.lastUse.Store(now)
	}
}

// use returns the open state, opening the partition first if needed, with
// mu held shared: the caller must call p.mu.RUnlock when done.
func (p *Partition) use() (*state, error) {
	for range 8 {
		p.mu.RLock()
		if st := p.st; st != nil && st.loaded && !st.log.Released() {
			p.touch()
			return st, nil
		}
		p.mu.RUnlock()
		p.mu.Lock()
		err := p.openLocked(true)
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		// Evicted again before we got it back (never expected twice
		// in a row): retry.
	}
	return nil, fmt.Errorf("%w: %s-%d keeps being closed while opened", ErrStorage, p.o.Topic, p.o.Index)
}

// useState is use for calls that read only in-memory state (offsets,
// transactions): a partition that released its files (FreeFiles) is not
// reopened for them.
func (p *Partition) useState() (*state, error) {
	p.mu.RLock()
	if st := p.st; st != nil && st.loaded {
		p.touch()
		return st, nil
	}
	p.mu.RUnlock()
	return p.use()
}

// openLocked opens the state if it is closed and, if load, loads the
// producer state. Caller holds mu exclusively.
func (p *Partition) openLocked(load bool) error { return p.openDeferred(load, false) }

// openDeferred is openLocked; with deferSync, recovery leaves making what
// it validated durable to the caller (storage.Options.DeferRecoverySync).
func (p *Partition) openDeferred(load, deferSync bool) error {
	if p.deleted {
		return ErrDeleted
	}
	if p.st == nil {
		if time.Now().Before(p.retryAt) {
			return p.openErr
		}
		if p.files != nil {
			p.files.makeRoom()
		}
		p.optsMu.Lock()
		o := p.o
		p.optsMu.Unlock()
		o.Storage.DeferRecoverySync = deferSync
		o.Storage.Created = p.fresh
		p.fresh = false // a failed open retries reading everything
		st, err := openState(p.dir, o)
		if err != nil {
			p.retryAt, p.openErr = time.Now().Add(openRetry), fmt.Errorf("%w: %v", ErrStorage, err)
			p.lg.Warn("partition cannot be opened; retried on use", "err", err)
			return p.openErr
		}
		st.hwCap = &p.hwCap
		p.st, p.openErr, p.closeErr = st, nil, nil
		p.epoch.Store(st.epochs.epoch())
		p.log.Store(st.log)
		p.touch()
		if p.files != nil {
			p.files.opened(p, st.log.OpenFiles())
		}
	} else if p.st.log.Released() {
		// Evicted to its descriptors (FreeFiles): one open per segment.
		if p.files != nil {
			p.files.makeRoom()
		}
		if err := p.st.log.ReopenFiles(); err != nil {
			return fmt.Errorf("%w: %v", ErrStorage, err)
		}
		p.touch()
		if p.files != nil {
			p.files.opened(p, p.st.log.OpenFiles())
		}
	}
	if load && !p.st.loaded {
		if err := p.st.LoadProducers(); err != nil {
			return fmt.Errorf("%w: load producer state of %s-%d: %v", ErrStorage, p.o.Topic, p.o.Index, err)
		}
	}
	return nil
}

// closeLocked closes the open state, keeping what the sweeps need to know
// about it. Caller holds mu exclusively.
func (p *Partition) closeLocked() error { return p.closeIn(nil) }

// CloseIn closes the partition like Close, leaving its durable writes to b
// (storage.CloseBatch: the broker's shutdown closes thousands at once).
func (p *Partition) CloseIn(b *storage.CloseBatch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeIn(b)
}

func (p *Partition) closeIn(b *storage.CloseBatch) error {
	st := p.st
	if st == nil {
		return nil
	}
	p.summary = &closedLog{segs: st.log.Segments(), start: st.log.LogStartOffset(), end: st.log.LogEndOffset()}
	if st.loaded && !st.log.Failed() {
		p.summary.offsets, p.summary.stable = true, st.LastStable()
	}
	var size int64
	for _, s := range p.summary.segs {
		size += s.Size
	}
	p.closedSize.Store(size)
	err := st.close(b)
	p.closeErr = err
	if err != nil {
		p.summary.offsets = false
	}
	p.st = nil
	p.log.Store(nil)
	if p.files != nil {
		p.files.closed(p)
	}
	return err
}

// FreeFiles gives up the partition's file descriptors if nobody uses it and
// its log has not failed (a failed log stays open and offline until
// restart). An unchanged partition is closed (that writes nothing and
// frees its memory too); a changed one only releases its descriptors
// (storage.Log.ReleaseFiles: no fsync, no file written, the state kept),
// so a broker with more partitions in use than descriptors reopens files,
// not logs. It reports whether it freed the descriptors. Used by the
// open-file budget (Files) and the WAL replay at start (for partitions it
// made durable and loaded).
func (p *Partition) FreeFiles() bool { return p.tryFree(true) }

// tryClose closes the partition if nobody uses it and its log has not
// failed (the sweeps, after looking at a closed partition).
func (p *Partition) tryClose() bool { return p.tryFree(false) }

// tryFree is FreeFiles, or tryClose without release.
func (p *Partition) tryFree(release bool) bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	if p.st == nil || p.st.log.Failed() || !p.st.loaded || (release && p.st.log.Released()) {
		return false
	}
	if release && !p.st.log.Marked() {
		if !p.st.log.ReleaseFiles() {
			// Data the committer has not taken yet, or a fetch
			// response holds a file: not now (closing would fsync).
			return false
		}
		if p.files != nil {
			p.files.released(p)
		}
		return true
	}
	if err := p.closeLocked(); err != nil {
		p.lg.Warn("closing idle partition failed; it is recovered on next use", "err", err)
	}
	return true
}

// Close closes the partition's files (syncing what was appended and
// writing the producer snapshot if it changed). It is reopened on next use.
func (p *Partition) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeLocked()
}

// Delete removes the partition's files (its topic was deleted); later
// uses answer ErrDeleted.
func (p *Partition) Delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = true
	if st := p.st; st != nil {
		p.st = nil
		p.log.Store(nil)
		if p.files != nil {
			p.files.closed(p)
		}
		return st.Delete()
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("partition: delete %s: %w", p.dir, err)
	}
	return storage.SyncDir(filepath.Dir(p.dir))
}

// LoadProducers loads the producer state now (after the WAL replay); the
// first use does it otherwise.
func (p *Partition) LoadProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		return nil
	}
	return p.openLocked(true)
}

// ReplayWALBatch appends a batch found in the WAL if it continues the log,
// opening the partition without its producer state (see state.ReplayWALBatch).
// Recovery at that open does not fsync: the replay makes everything durable
// with one syncfs before it resets the WAL (PrepareSync).
func (p *Partition) ReplayWALBatch(batch []byte) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.openDeferred(false, true); err != nil {
		return false, err
	}
	return p.st.ReplayWALBatch(batch)
}

// Checkpoint writes the log's clean-shutdown state if it changed since it
// was opened (storage.Log.Checkpoint) and the partition is idle now.
func (p *Partition) Checkpoint() error {
	if !p.mu.TryRLock() {
		return nil
	}
	defer p.mu.RUnlock()
	if p.st == nil || !p.st.loaded {
		return nil
	}
	return p.st.log.Checkpoint()
}

// CheckpointIn is Checkpoint through a batch (storage.Log.CheckpointIn):
// the partition stays open (its lock held shared) until done is called
// with the batch's Commit result. A partition in use by an opener or
// closer, closed, not loaded, or with nothing to checkpoint is skipped
// (done is nil).
func (p *Partition) CheckpointIn(b *storage.CloseBatch) (done func(error), err error) {
	if !p.mu.TryRLock() {
		return nil, nil
	}
	if p.st == nil || !p.st.loaded {
		p.mu.RUnlock()
		return nil, nil
	}
	d, err := p.st.log.CheckpointIn(b)
	if err != nil || d == nil {
		p.mu.RUnlock()
		return nil, err
	}
	return func(commitErr error) {
		defer p.mu.RUnlock()
		d(commitErr)
	}, nil
}

// --- commit.WALLog: the committer holds partitions across rounds; a
// partition closed meanwhile was synced by its Close, so these do not
// reopen it.

// Sync makes everything appended durable (a closed partition is, unless
// its close failed).
func (p *Partition) Sync() (int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st == nil {
		return 0, p.closeErr
	}
	return p.st.Sync()
}

// MarkDurable records that the WAL made everything below end durable.
func (p *Partition) MarkDurable(end int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st != nil {
		p.st.MarkDurable(end)
	}
}

// Unsynced hands the committer the unsynced tail (none while closed).
func (p *Partition) Unsynced(dst []byte) ([]byte, int64, int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st == nil {
		return dst, 0, 0, nil
	}
	return p.st.Unsynced(dst)
}

// --- What Metadata asks of every partition: never opens one.

// LeaderEpoch is the partition's leader epoch, kept here so that it is
// known while closed too (a partition not opened since start has the
// single node's 0; clustering will keep epochs in the metadata image).
func (p *Partition) LeaderEpoch() int32 { return p.epoch.Load() }

// Failed reports whether the partition's log failed (it is offline until
// restart). A closed partition has not.
func (p *Partition) Failed() bool {
	l := p.log.Load()
	return l != nil && l.Failed()
}

// Size is the bytes of the partition's segment files, from the open log or
// the last close, else from the directory (once).
func (p *Partition) Size() int64 {
	if l := p.log.Load(); l != nil {
		return l.Size()
	}
	if n := p.closedSize.Load(); n >= 0 {
		return n
	}
	_, n := storage.SegmentBytes(p.dir)
	p.closedSize.CompareAndSwap(-1, n)
	return n
}

// --- The sweeps: they look at closed partitions without filling the
// open-file budget.

// visit runs fn on the open state. A partition that was closed is closed
// again after fn unless someone else started using it meanwhile.
func (p *Partition) visit(fn func(st *state)) error {
	wasOpen := p.IsOpen()
	st, err := p.use()
	if err != nil {
		return err
	}
	fn(st)
	p.mu.RUnlock()
	if !wasOpen {
		p.tryClose()
	}
	return nil
}

// SweepOpens bounds how many closed partitions without a summary (not
// opened since start) one sweep may open to look at; the rest wait for a
// later sweep, so the first sweeps after starting with 100,000 partitions
// do not open all of them at once.
type SweepOpens struct{ n int }

// NewSweepOpens allows n opens.
func NewSweepOpens(n int) *SweepOpens { return &SweepOpens{n: n} }

// unknownClosed reports whether a closed partition has no summary, and
// gives it an empty one if its directory holds no data (never written:
// nothing to retain or clean).
func (p *Partition) unknownClosed() (sum *closedLog, unknown bool) {
	p.mu.RLock()
	sum = p.summary
	p.mu.RUnlock()
	if sum != nil {
		return sum, false
	}
	if _, err := os.Stat(p.dir); err == nil {
		// A directory without data (no segment, or the empty one
		// CreateTopics made) has nothing to expire or compact.
		if _, bytes := storage.SegmentBytes(p.dir); bytes > 0 {
			return nil, true
		}
		p.mu.Lock()
		if p.summary == nil && p.st == nil {
			p.summary = &closedLog{}
		}
		sum = p.summary
		p.mu.Unlock()
		return sum, sum == nil
	}
	return nil, true
}

// take uses one of the sweep's opens; false when none is left.
func (o *SweepOpens) take() bool {
	if o == nil || o.n <= 0 {
		return false
	}
	o.n--
	return true
}

// ApplyRetention is state.ApplyRetention. A closed partition is opened only
// if its summary says something expired, or it has none yet and opens
// allows it, and is closed again after.
func (p *Partition) ApplyRetention(nowMs, retentionMs, retentionBytes int64, budget int, opens *SweepOpens) (RetentionResult, error) {
	if l := p.log.Load(); l != nil && l.Released() &&
		expiredSegments(l.Segments(), l.LogStartOffset(), l.LogEndOffset(), nowMs, retentionMs, retentionBytes, budget) == 0 {
		return RetentionResult{}, nil // not reopened to find nothing to do
	}
	if !p.IsOpen() {
		sum, unknown := p.unknownClosed()
		switch {
		case unknown && !opens.take():
			return RetentionResult{}, nil
		case sum != nil && expiredSegments(sum.segs, sum.start, sum.end, nowMs, retentionMs, retentionBytes, budget) == 0:
			return RetentionResult{}, nil
		}
	}
	var res RetentionResult
	var rerr error
	err := p.visit(func(st *state) { res, rerr = st.ApplyRetention(nowMs, retentionMs, retentionBytes, budget) })
	if errors.Is(err, ErrDeleted) {
		return RetentionResult{}, nil
	}
	return res, errors.Join(err, rerr)
}

// Clean is state.Clean. A closed partition is looked at only if it changed
// since the cleaner's last look, or has no summary yet and opens allows it.
func (p *Partition) Clean(o storage.CleanOptions, opens *SweepOpens) (storage.CleanResult, int64, error) {
	if l := p.log.Load(); l != nil && l.Released() && l.LogEndOffset() == p.cleanedEnd.Load() {
		return storage.CleanResult{}, 0, nil
	}
	if !p.IsOpen() {
		sum, unknown := p.unknownClosed()
		switch {
		case unknown && !opens.take():
			return storage.CleanResult{}, 0, nil
		case sum != nil && (sum.end == p.cleanedEnd.Load() || len(sum.segs) == 0):
			return storage.CleanResult{}, 0, nil
		}
	}
	var res storage.CleanResult
	var before int64
	var cerr error
	err := p.visit(func(st *state) {
		res, before, cerr = st.Clean(o)
		if cerr == nil {
			p.cleanedEnd.Store(st.log.LogEndOffset())
		}
	})
	return res, before, errors.Join(err, cerr)
}

// ExpireProducers is state.ExpireProducers for an open partition; a closed
// one's producers are checked when it is next open during a sweep.
func (p *Partition) ExpireProducers(nowMs int64, ttl time.Duration) int {
	if !p.mu.TryRLock() {
		return 0
	}
	defer p.mu.RUnlock()
	if p.st == nil || !p.st.loaded {
		return 0
	}
	return p.st.ExpireProducers(nowMs, ttl)
}

// --- Everything else opens the partition for the call.

// AppendBatches is state.AppendBatches.
func (p *Partition) AppendBatches(batches [][]byte, headers []storage.BatchHeader) AppendResult {
	st, err := p.use()
	if err != nil {
		return AppendResult{Err: err}
	}
	defer p.mu.RUnlock()
	res := st.AppendBatches(batches, headers)
	res.LogStart = st.log.LogStartOffset()
	return res
}

// Append is state.Append.
func (p *Partition) Append(raw []byte) (int64, error) {
	st, err := p.use()
	if err != nil {
		return -1, err
	}
	defer p.mu.RUnlock()
	return st.Append(raw)
}

// AppendMarker is state.AppendMarker.
func (p *Partition) AppendMarker(pid int64, epoch int16, commit bool) (int64, int64, error) {
	st, err := p.use()
	if err != nil {
		return -1, -1, err
	}
	defer p.mu.RUnlock()
	return st.AppendMarker(pid, epoch, commit)
}

// SetLogStartOffset is state.SetLogStartOffset.
func (p *Partition) SetLogStartOffset(offset int64) (int, int64, error) {
	st, err := p.use()
	if err != nil {
		return 0, 0, err
	}
	defer p.mu.RUnlock()
	return st.SetLogStartOffset(offset)
}

// CheckLeaderEpoch validates a client's idea of the leader epoch (-1 = no
// check): older answers ErrFencedLeaderEpoch, newer ErrUnknownLeaderEpoch.
// It needs no open log.
func (p *Partition) CheckLeaderEpoch(epoch int32) error {
	current := p.LeaderEpoch()
	switch {
	case epoch < 0 || epoch == current:
		return nil
	case epoch < current:
		return ErrFencedLeaderEpoch
	default:
		return ErrUnknownLeaderEpoch
	}
}

// BumpLeaderEpoch is state.BumpLeaderEpoch.
func (p *Partition) BumpLeaderEpoch(epoch int32) {
	if st, err := p.use(); err == nil {
		defer p.mu.RUnlock()
		st.BumpLeaderEpoch(epoch)
		p.epoch.Store(st.LeaderEpoch())
	}
}

// LeaderEpochs is state.LeaderEpochs.
func (p *Partition) LeaderEpochs() []EpochEntry {
	st, err := p.use()
	if err != nil {
		return nil
	}
	defer p.mu.RUnlock()
	return st.LeaderEpochs()
}

// EndOffsetForEpoch is state.EndOffsetForEpoch (-1, -1 if the partition
// cannot be opened).
func (p *Partition) EndOffsetForEpoch(requested int32) (int32, int64) {
	st, err := p.use()
	if err != nil {
		return -1, -1
	}
	defer p.mu.RUnlock()
	return st.EndOffsetForEpoch(requested)
}

// ActiveProducers is state.ActiveProducers.
func (p *Partition) ActiveProducers() ([]ProducerInfo, error) {
	st, err := p.use()
	if err != nil {
		return nil, err
	}
	defer p.mu.RUnlock()
	return st.ActiveProducers(), nil
}

// Offsets are a partition's offsets at one moment.
type Offsets struct {
	LogStart, LogEnd, HighWatermark, LastStable int64
}

// Offsets returns the partition's offsets.
func (p *Partition) Offsets() (Offsets, error) {
	p.mu.RLock()
	if s := p.summary; p.st == nil && s != nil && s.offsets && !p.deleted && !p.Replicated() {
		// Closed since it was last open: its offsets cannot have
		// changed (a fetch of every partition at its end opens none).
		p.mu.RUnlock()
		return Offsets{LogStart: s.start, LogEnd: s.end, HighWatermark: s.end, LastStable: s.stable}, nil
	}
	p.mu.RUnlock()
	st, err := p.useState()
	if err != nil {
		return Offsets{}, err
	}
	defer p.mu.RUnlock()
	if st.log.Failed() {
		return Offsets{}, fmt.Errorf("%w: log failed", ErrStorage)
	}
	return Offsets{LogStart: st.log.LogStartOffset(), LogEnd: st.log.LogEndOffset(), HighWatermark: st.HighWatermark(), LastStable: st.LastStable()}, nil
}

// HighWatermark is state.HighWatermark (-1 if the partition cannot be
// opened).
func (p *Partition) HighWatermark() int64 {
	st, err := p.useState()
	if err != nil {
		return -1
	}
	defer p.mu.RUnlock()
	return st.HighWatermark()
}

// LastStable is state.LastStable (-1 if the partition cannot be opened).
func (p *Partition) LastStable() int64 {
	st, err := p.useState()
	if err != nil {
		return -1
	}
	defer p.mu.RUnlock()
	return st.LastStable()
}

// AbortedIn is state.AbortedIn.
func (p *Partition) AbortedIn(from, to int64) []AbortedTxn {
	st, err := p.useState()
	if err != nil {
		return nil
	}
	defer p.mu.RUnlock()
	return st.AbortedIn(from, to)
}

// WithLog runs fn with the partition's open log, for reads and lookups
// (Read, Segments, OffsetForTimestamp...). Appends and moves of the log
// start go through the Partition, which keeps its state with them. fn must
// not keep the log: it may be closed once fn returns.
func (p *Partition) WithLog(fn func(l *storage.Log) error) error {
	st, err := p.use()
	if err != nil {
		return err
	}
	defer p.mu.RUnlock()
	return fn(st.log)
}

// DurableOffset is the log's durable offset; math.MaxInt64 for a closed
// partition (Close synced everything), so a producer waiting for its
// batch to become durable is done.
func (p *Partition) DurableOffset() int64 {
	if l := p.log.Load(); l != nil {
		return l.DurableOffset()
	}
	return math.MaxInt64
}

// SetSegmentLimits changes segment.bytes and segment.ms for the open log
// and for the next open.
func (p *Partition) SetSegmentLimits(segmentBytes int64, age time.Duration) {
	p.optsMu.Lock()
	if segmentBytes > 0 {
		p.o.Storage.SegmentBytes = segmentBytes
	}
	if age > 0 {
		p.o.Storage.SegmentAge = age
	}
	p.optsMu.Unlock()
	// Shared: an open that raced with this read the new options already.
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st != nil {
		p.st.log.SetSegmentLimits(segmentBytes, age)
	}
}

// Log opens the partition and returns its log without holding it open:
// with an open-file budget it may be closed at any moment after. Broker
// code uses WithLog; this is for tests and partitions without a budget.
func (p *Partition) Log() *storage.Log {
	if _, err := p.use(); err != nil {
		return nil
	}
	defer p.mu.RUnlock()
	return p.st.log
}

// PrepareSync is the first half of a Sync around a filesystem-wide sync
// (storage.SyncPoint): the partition stays open until complete is called
// with the SyncFS result. A closed partition has nothing to sync.
func (p *Partition) PrepareSync() (complete func(fsErr error) error, err error) {
	p.mu.RLock()
	if p.st == nil {
		err := p.closeErr
		p.mu.RUnlock()
		return func(error) error { return nil }, err
	}
	sp, err := p.st.log.PrepareSync()
	if err != nil {
		p.mu.RUnlock()
		return nil, err
	}
	return func(fsErr error) error {
		defer p.mu.RUnlock()
		return sp.Complete(fsErr)
	}, nil
}
