// Package commit is the group committer: it turns many appends into few
// fsyncs. Producers append to partition logs (page cache only), mark each log
// dirty here and wait on the Round the mark landed in. One goroutine runs
// rounds back to back: it takes the set of dirty logs, fsyncs them all, then
// closes the round's channel, which releases every producer of the round at
// once. While a round's fsyncs run, the next round accumulates, so the number
// of batches per fsync grows with load and an idle broker adds no latency: a
// lone producer waits for exactly one fsync.
//
// A round spread over several logs and small (WALMaxRoundBytes, 1 MiB) is
// instead made durable by one write and fdatasync of the shared write-ahead
// log (internal/wal): the logs' tails go there and the logs are marked
// durable without an fsync of their own. When the WAL reaches
// WALCheckpointBytes (64 MiB), or fails, a checkpoint fsyncs every log it
// covers and then resets it (one recycled file, a new generation; see
// package wal). A checkpoint covering many logs (thousands of partitions)
// writes their buffers and makes them durable with one syncfs(2) of the
// filesystem instead (Options.SyncFS, TwoPhaseLog): one device flush
// instead of one per partition. A log that fails its checkpoint fsync keeps the WAL as it
// is, and rounds go to the logs directly until a checkpoint succeeds.
//
// With a second WAL file (Options.WAL2) a checkpoint does not stop the
// rounds: the full file is handed to a background goroutine, which syncs the
// logs it covers and then resets it, while rounds go on in the other file.
// With thousands of partitions a checkpoint's writes and syncfs take most
// of a second; producers no longer wait for it. Only when the other file is
// full too before the background checkpoint ends does the round wait. A
// log's records may then be in both files (older data in the file being
// checkpointed); replay puts the two files in order (the WAL being
// replayed second never holds a partition's earlier offsets).
//
// Invariant: a log marked dirty in round R was appended to before R began, so
// R's Sync covers that append. Rounds complete in order.
package commit

import (
	"context"
	"errors"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wal"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Log is what the committer syncs; *storage.Log implements it.
type Log interface {
	// Sync makes everything appended so far durable. An error is final for
	// that log (the log goes offline); the committer never retries it.
	Sync() (durable int64, err error)
}

// WALLog is a Log whose unsynced tail can instead be made durable through the
// shared write-ahead log (see walRound).
type WALLog interface {
	Log
	WALKey() wal.Key
	// Unsynced appends the batches between the durable offset and the log
	// end to dst and returns the offsets they span.
	Unsynced(dst []byte) (data []byte, from, to int64, err error)
	// MarkDurable records that everything below end is durable.
	MarkDurable(end int64)
}

// TwoPhaseLog is a Log whose sync can be split around one filesystem-wide
// sync (storage.SyncPoint): PrepareSync writes its buffers and holds it;
// complete records it synced after SyncFS returned fsErr (fsyncing its own
// files instead if fsErr is not nil).
type TwoPhaseLog interface {
	Log
	PrepareSync() (complete func(fsErr error) error, err error)
}

// syncFSMinLogs: a checkpoint covering at least this many logs makes them
// durable with one SyncFS instead of an fsync each. Each fsync costs a
// device cache flush even for a file with nothing dirty; with thousands of
// partitions one flush instead of thousands is the difference between a
// checkpoint of milliseconds and one of seconds.
const syncFSMinLogs = 32

// Round is one fsync round. Done is closed when every log marked in it has
// been synced (successfully or not: callers check their log's state).
type Round struct {
	done    chan struct{}
	batches int
	bytes   int64
}

// Done is closed when the round's fsyncs have finished.
func (r *Round) Done() <-chan struct{} { return r.done }

// Stats are cumulative counters (for metrics).
type Stats struct {
	Rounds       int64 // fsync rounds completed
	Batches      int64 // produce batches covered by those rounds
	Syncs        int64 // individual log fsyncs
	SyncFailures int64
	LastBatches  int64 // batches in the most recent round
	WALRounds    int64 // rounds made durable through the WAL
}

// Committer runs fsync rounds.
type Committer struct {
	log         *slog.Logger
	parallelism int
	observe     func(d time.Duration, batches int)

	// roundMu serialises rounds (Run's loop and Flush), so rounds complete
	// in the order they were cut, as the package invariant promises.
	roundMu sync.Mutex

	mu    sync.Mutex
	dirty map[Log]struct{}
	next  *Round
	tick  chan struct{} // closed and replaced whenever a round completes

	kick chan struct{}

	// WAL state, owned by the round (roundMu).
	wal           *wal.WAL    // the file rounds write to
	wals          [2]*wal.WAL // wal and, with Options.WAL2, the other file
	bg            *bgCheckpoint
	walMaxRound   int64
	walCheckpoint int64
	walCovered    map[WALLog]struct{} // logs with WAL-only data since the last checkpoint
	walScratch    []byte
	walHeld       bool // the last checkpoint kept the WAL (a covered log failed)
	walRounds     atomic.Int64

	syncFS func() error // nil: checkpoints fsync each log

	maxBuffer int64        // bytes; 0 = unbounded
	buffered  atomic.Int64 // appended bytes whose round has not completed

	rounds, batches, syncs, failures, last atomic.Int64
}

// Options configure a Committer.
type Options struct {
	// Parallelism bounds how many logs are fsynced at once in a round.
	Parallelism int
	Logger      *slog.Logger
	// Observe, if set, is called after each round with its fsync duration.
	Observe func(d time.Duration, batches int)
	// WAL, if set, lets a round spread over several logs be made durable by
	// one sequential write and fdatasync instead of an fsync per log.
	WAL *wal.WAL
	// WALMaxRoundBytes is the largest round written through the WAL
	// (default 1 MiB); bigger rounds fsync the logs directly, since their
	// data must reach the disk anyway and writing it twice would halve
	// the bandwidth.
	WALMaxRoundBytes int64
	// WAL2, if set with WAL, is a second WAL file: a checkpoint of one
	// runs in the background while rounds write to the other.
	WAL2 *wal.WAL
	// WALCheckpointBytes is the WAL size at which the logs it covers are
	// fsynced and the WAL is reset (default 64 MiB).
	WALCheckpointBytes int64
	// MaxBufferBytes bounds appended-but-unsynced bytes: WaitBuffer blocks
	// producers while the bound is reached (the profile's buffer). 0 means
	// no bound.
	MaxBufferBytes int64
	// SyncFS, if set, makes the filesystem holding the logs and the WAL
	// durable at once (storage.SyncFS); checkpoints covering many logs use
	// it instead of an fsync per log.
	SyncFS func() error
}

// New returns a committer; call Run to start it.
func New(opts Options) *Committer {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 8
	}
	if opts.WALMaxRoundBytes <= 0 {
		opts.WALMaxRoundBytes = 1 << 20
	}
	if opts.WALCheckpointBytes <= 0 {
		opts.WALCheckpointBytes = 64 << 20
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &Committer{
		log: lg, parallelism: opts.Parallelism, observe: opts.Observe, maxBuffer: opts.MaxBufferBytes,
		wal: opts.WAL, walMaxRound: opts.WALMaxRoundBytes, walCheckpoint: opts.WALCheckpointBytes, syncFS: opts.SyncFS,
		walCovered: map[WALLog]struct{}{},
		dirty:      map[Log]struct{}{}, next: newRound(), kick: make(chan struct{}, 1), tick: make(chan struct{}),
	}
	if opts.WAL != nil {
		c.wals[0] = opts.WAL
		c.wals[1] = opts.WAL2
	}
	return c
}

func newRound() *Round { return &Round{done: make(chan struct{})} }

// Add marks l dirty (an append of `batches` batches just happened) and returns
// the round that will sync it.
func (c *Committer) Add(l Log, batches int) *Round { return c.AddBytes(l, batches, 0) }

// AddBytes is Add that also accounts n appended bytes against the buffer
// bound until the round completes.
func (c *Committer) AddBytes(l Log, batches int, n int64) *Round {
	c.mu.Lock()
	c.dirty[l] = struct{}{}
	r := c.next
	r.batches += batches
	r.bytes += n
	c.buffered.Add(n)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return r
}

// ErrBufferFull is returned by WaitBuffer when the buffer stayed full until
// the deadline.
var ErrBufferFull = errors.New("commit: unsynced buffer full until the request deadline")

// WaitBuffer blocks while the unsynced bytes are at or above the buffer
// bound: back-pressure instead of unbounded memory or dropped data. It
// returns ErrBufferFull at the deadline.
func (c *Committer) WaitBuffer(deadline time.Time) error {
	if c.maxBuffer <= 0 || c.buffered.Load() < c.maxBuffer {
		return nil
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		c.mu.Lock()
		tick := c.tick // taken before the check, so no completion is missed
		c.mu.Unlock()
		if c.buffered.Load() < c.maxBuffer {
			return nil
		}
		select {
		case <-tick:
		case <-t.C:
			return ErrBufferFull
		}
	}
}

// Buffered returns the appended bytes not yet covered by a completed round.
func (c *Committer) Buffered() int64 { return c.buffered.Load() }

// Next returns the round now accumulating; its Done fires when the next
// fsync round completes (fetch long polls wait on it for new durable data).
func (c *Committer) Next() *Round {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// Tick returns a channel closed when the next round completes, whichever
// round that is: one in flight now included. Fetch long polls wait on it
// for new durable data; waiting on Next instead would miss the round in
// flight when the fetch arrived, and if nothing else is appended the next
// one never runs (a follower waited its whole MaxWait that way).
func (c *Committer) Tick() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tick
}

// Stats returns the counters.
func (c *Committer) Stats() Stats {
	return Stats{
		Rounds: c.rounds.Load(), Batches: c.batches.Load(), Syncs: c.syncs.Load(),
		SyncFailures: c.failures.Load(), LastBatches: c.last.Load(), WALRounds: c.walRounds.Load(),
	}
}

// Run executes rounds until ctx ends, then runs a last round so nothing
// appended before shutdown is left unsynced, and waits for a background
// checkpoint (none runs once Run returned).
func (c *Committer) Run(ctx context.Context) {
	for {
		select {
		case <-c.kick:
			c.round()
		case <-ctx.Done():
			c.round()
			c.roundMu.Lock()
			c.reapCheckpoint(true)
			c.roundMu.Unlock()
			return
		}
	}
}

// Flush runs a round now (used at shutdown and by tests).
func (c *Committer) Flush() { c.round() }

func (c *Committer) round() {
	c.roundMu.Lock()
	defer c.roundMu.Unlock()
	c.mu.Lock()
	if len(c.dirty) == 0 {
		c.mu.Unlock()
		return
	}
	logs := make([]Log, 0, len(c.dirty))
	for l := range c.dirty {
		logs = append(logs, l)
	}
	clear(c.dirty)
	r := c.next
	c.next = newRound()
	c.mu.Unlock()

	start := time.Now()
	if !c.walRound(logs, r.bytes) {
		c.syncAll(logs)
	}
	d := time.Since(start)
	c.buffered.Add(-r.bytes)
	c.mu.Lock()
	close(c.tick)
	c.tick = make(chan struct{})
	c.mu.Unlock()
	c.rounds.Add(1)
	c.batches.Add(int64(r.batches))
	c.last.Store(int64(r.batches))
	if c.observe != nil {
		c.observe(d, r.batches)
	}
	if d > time.Second {
		c.log.Warn("slow fsync round", "duration", d, "logs", len(logs), "batches", r.batches)
	}
	close(r.done)
	c.maybeCheckpoint()
}

func (c *Committer) syncAll(logs []Log) {
	if len(logs) == 1 {
		c.syncOne(logs[0])
		return
	}
	sem := make(chan struct{}, c.parallelism)
	var wg sync.WaitGroup
	for _, l := range logs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.syncOne(l)
		}()
	}
	wg.Wait()
}

func (c *Committer) syncOne(l Log) {
	c.syncs.Add(1)
	if _, err := l.Sync(); err != nil {
		c.failures.Add(1)
		// The log itself logs the failure and goes offline; producers
		// waiting on this round see the failed state and get an error.
	}
}

// walRound makes a round durable through the WAL when that is cheaper: more
// than one log is dirty (or a background checkpoint runs) and the round is
// small. It returns false when the
// caller must fsync the logs directly (not applicable, or the WAL failed:
// nothing was marked durable then).
func (c *Committer) walRound(logs []Log, bytes int64) bool {
	// One log is fsynced directly (as cheap as the WAL's fdatasync, and
	// written once), except while a background checkpoint runs: it holds
	// the logs it covers between its writes and its syncfs, and the round
	// must not wait for that.
	if c.wal == nil || (len(logs) < 2 && c.bg == nil) || bytes > c.walMaxRound || c.wal.Failed() {
		return false
	}
	if c.wal.Size() >= c.walCheckpoint {
		// A checkpoint is due but could not reset the WAL (a covered log
		// failed to sync): do not let the WAL grow without bound.
		return false
	}
	type mark struct {
		l  WALLog
		to int64
	}
	marks := make([]mark, 0, len(logs))
	for _, l := range logs {
		wl, ok := l.(WALLog)
		if !ok {
			c.wal.Discard()
			return false
		}
		data, from, to, err := wl.Unsynced(c.walScratch[:0])
		c.walScratch = data[:0]
		if err != nil {
			c.wal.Discard()
			return false
		}
		if to > from {
			c.wal.Append(wl.WALKey(), data)
			marks = append(marks, mark{wl, to})
		}
	}
	if err := c.wal.Commit(); err != nil {
		c.wal.Discard()
		return false
	}
	for _, m := range marks {
		m.l.MarkDurable(m.to)
		c.walCovered[m.l] = struct{}{}
	}
	if cap(c.walScratch) > 4<<20 {
		c.walScratch = nil
	}
	c.walRounds.Add(1)
	return true
}

// maybeCheckpoint checkpoints once the WAL reaches the checkpoint size, or
// failed while covering logs. Called by the round goroutine after releasing
// the round's waiters.
func (c *Committer) maybeCheckpoint() {
	if c.wal == nil {
		return
	}
	c.reapCheckpoint(false)
	// A failed WAL takes no more records; fsync what it covers now rather
	// than keep relying on a file that just returned an I/O error.
	failed := c.wal.Failed() && len(c.walCovered) > 0
	if c.wal.Size() < c.walCheckpoint && !failed {
		return
	}
	if !failed && c.startBackground() {
		return
	}
	c.Checkpoint()
}

// bgCheckpoint is a checkpoint running in the background over a WAL file
// rounds no longer write to.
type bgCheckpoint struct {
	w       *wal.WAL
	covered map[WALLog]struct{}
	done    chan struct{}
	keep    bool // a covered log failed to sync: w was not reset
}

// startBackground hands the current WAL and the logs it covers to a
// background checkpoint and switches rounds to the other file. It reports
// false when that cannot be done (one file, the other failed or held, or
// a covered log failed at the last checkpoint): the caller checkpoints in
// the foreground. If the other file's checkpoint is still running, it
// waits for it first: rounds never get ahead of two files.
func (c *Committer) startBackground() bool {
	other := c.wals[0]
	if other == c.wal {
		other = c.wals[1]
	}
	if other == nil || c.walHeld {
		return false
	}
	if c.bg != nil {
		start := time.Now()
		c.reapCheckpoint(true)
		c.log.Debug("checkpoint: waited for the previous one", "duration", time.Since(start))
		if c.walHeld {
			return false
		}
	}
	if other.Failed() || other.Size() > 0 {
		return false
	}
	bg := &bgCheckpoint{w: c.wal, covered: c.walCovered, done: make(chan struct{})}
	c.walCovered = map[WALLog]struct{}{}
	c.wal = other
	c.bg = bg
	go func() {
		defer close(bg.done)
		bg.keep = c.syncCovered(bg.covered, false)
		if bg.keep || bg.w.Failed() {
			return
		}
		if err := bg.w.Reset(); err != nil {
			c.log.Error("checkpoint: could not reset the WAL", "err", err)
		}
	}()
	return true
}

// reapCheckpoint collects a finished background checkpoint (waiting for it
// if wait). If a covered log failed, its logs are covered again by the
// current file's next checkpoint, which then resets both files; until then
// rounds fsync logs directly (walHeld).
func (c *Committer) reapCheckpoint(wait bool) {
	bg := c.bg
	if bg == nil {
		return
	}
	if wait {
		<-bg.done
	} else {
		select {
		case <-bg.done:
		default:
			return
		}
	}
	c.bg = nil
	if bg.keep {
		for l := range bg.covered {
			c.walCovered[l] = struct{}{}
		}
		c.walHeld = true
	}
}

// Checkpoint fsyncs the logs covered by the WAL and resets the WAL files.
// If a log fails to sync, the WAL is kept (it still holds that log's data
// for the next start). It waits for a background checkpoint first. Call it
// only from the round goroutine or when rounds stopped.
func (c *Committer) Checkpoint() {
	if c.wal == nil {
		return
	}
	c.reapCheckpoint(true)
	keep := c.syncCovered(c.walCovered, c.walHeld)
	c.walHeld = keep
	if keep {
		return
	}
	clear(c.walCovered)
	for _, w := range c.wals {
		if w == nil || w.Failed() || w.Size() == 0 {
			continue // a failed WAL was logged by the WAL; its logs are fsynced now
		}
		if err := w.Reset(); err != nil {
			c.log.Error("checkpoint: could not reset the WAL", "err", err)
		}
	}
}

// syncCovered makes every covered log durable and reports whether one
// failed (the WAL covering them must then be kept). held says the last
// checkpoint failed too (its error was logged then).
func (c *Committer) syncCovered(covered map[WALLog]struct{}, held bool) (keep bool) {
	fail := func(err error) {
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			if !keep && !held { // retried every round: log once
				c.log.Error("checkpoint: log sync failed; keeping the WAL for recovery", "err", err)
			}
			keep = true
		}
	}
	if c.syncFS != nil && len(covered) >= syncFSMinLogs {
		fail(c.checkpointSyncFS(covered))
	} else {
		for l := range covered {
			_, err := l.Sync()
			fail(err)
		}
	}
	return keep
}

// checkpointSyncFS makes every covered log durable with one SyncFS
// (TwoPhaseLog); a log without the two phases is synced on its own.
func (c *Committer) checkpointSyncFS(covered map[WALLog]struct{}) error {
	var completes []func(error) error
	var errs []error
	for l := range covered {
		tp, ok := l.(TwoPhaseLog)
		if !ok {
			_, err := l.Sync()
			errs = append(errs, err)
			continue
		}
		complete, err := tp.PrepareSync()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		completes = append(completes, complete)
	}
	start := time.Now()
	fsErr := c.syncFS()
	if fsErr != nil {
		c.log.Warn("checkpoint: syncfs failed; fsyncing each log", "err", fsErr)
	}
	for _, complete := range completes {
		errs = append(errs, complete(fsErr))
	}
	c.syncs.Add(1)
	c.log.Debug("checkpoint by syncfs", "logs", len(covered), "duration", time.Since(start))
	return errors.Join(errs...)
}
