package partition

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
)

// Files bounds the file descriptors held by open partitions (the broker's
// --max-open-files). A partition counts the files its log holds (one per
// segment). At the bound an opener first frees the descriptors of idle
// partitions (makeRoom), and Run brings the count back under 90% of the
// bound in the background; a partition in use is never touched, so the
// bound is soft while more are in use at once. Freeing closes an
// unchanged partition and releases a changed one's files (Partition.FreeFiles).
// Partitions holding files wait in a queue in the order they opened; the
// eviction takes them from its head, giving a partition used since it was
// queued a second chance at the tail (an approximate LRU that costs O(1)
// per partition freed, not a sort of every open partition per opener).
// Run also checkpoints partitions idle for a while (storage.Log.Checkpoint),
// so a kill finds them trusted.
type Files struct {
	max int
	lg  *slog.Logger

	mu    sync.Mutex
	open  map[*Partition]int // files counted per open partition
	count int
	// queue holds partitions that held files when queued, oldest first
	// from head; an entry whose partition holds none any more is dropped
	// when reached. inQueue says which partitions have an entry.
	queue   []queued
	head    int
	inQueue map[*Partition]bool
	kick    chan struct{}

	evicted, checkpoints int64 // under mu

	evictMu   sync.Mutex // one eviction at a time
	refreshed time.Time  // last refresh, under mu

	// dataDir, if set, is on the filesystem of the partitions: recovery
	// checkpoints of many partitions are then made durable together
	// (storage.CloseBatch) instead of with about seven fsyncs each.
	dataDir string
}

// queued is a queue entry: the partition and its last use when queued.
type queued struct {
	p     *Partition
	stamp int64
}

// SetDataDir makes recovery checkpoints batch their durable writes through
// syncfs of the filesystem holding dir (see Checkpoint), where syncfs works.
func (f *Files) SetDataDir(dir string) {
	if err := storage.SyncFS(dir); err != nil {
		f.lg.Info("recovery checkpoints fsync partitions one by one", "reason", err)
		return
	}
	f.dataDir = dir
}

// NewFiles returns a budget of limit open files (at least 1).
func NewFiles(limit int, lg *slog.Logger) *Files {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Files{max: max(limit, 1), lg: lg, open: map[*Partition]int{}, inQueue: map[*Partition]bool{}, kick: make(chan struct{}, 1)}
}

// FilesStats are the budget's gauges and counters (for metrics).
type FilesStats struct {
	Max, Open, Partitions int
	Evicted, Checkpoints  int64
}

// Stats returns the current counts.
func (f *Files) Stats() FilesStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FilesStats{Max: f.max, Open: f.count, Partitions: len(f.open), Evicted: f.evicted, Checkpoints: f.checkpoints}
}

// makeRoom is called before a partition opens: if the bound is reached it
// closes idle partitions first, in the opener's goroutine, so a request
// touching thousands of partitions (a ListOffsets of every partition, a
// consumer's first fetch) never holds more files than the bound allows.
func (f *Files) makeRoom() {
	f.mu.Lock()
	excess := f.count - f.max + 1
	f.mu.Unlock()
	if excess > 0 {
		// Just enough, in small steps: the background pass makes the
		// rest of the room without holding up this request.
		f.evictSome(excess + makeRoomSlack)
	}
}

// makeRoomSlack is how many files an opener frees beyond what it needs, so
// that the next openers usually find room.
const makeRoomSlack = 16

// Over reports whether more files are open than the bound.
func (f *Files) Over() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count > f.max
}

func (f *Files) opened(p *Partition, n int) {
	f.mu.Lock()
	f.count += n - f.open[p]
	f.open[p] = n
	if n > 0 && !f.inQueue[p] {
		f.inQueue[p] = true
		f.queue = append(f.queue, queued{p, p.lastUse.Load()})
	}
	over := f.count > f.highWater()
	f.mu.Unlock()
	if over {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

// released: p gave up its descriptors but stays open (and a candidate for
// recovery checkpoints).
func (f *Files) released(p *Partition) {
	f.mu.Lock()
	f.count -= f.open[p]
	f.open[p] = 0
	f.mu.Unlock()
}

func (f *Files) closed(p *Partition) {
	f.mu.Lock()
	f.count -= f.open[p]
	delete(f.open, p)
	f.mu.Unlock()
}

// Run evicts when kicked or once a second, and checkpoints partitions idle
// for checkpointAfter (0: never) every checkpointAfter, until ctx ends.
func (f *Files) Run(ctx context.Context, checkpointAfter time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastCheckpoint := time.Now()
	idleTicks := int64(checkpointAfter / time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
			f.Evict()
		case now := <-t.C:
			useClock.Add(1)
			f.Evict()
			if checkpointAfter > 0 && now.Sub(lastCheckpoint) >= checkpointAfter {
				lastCheckpoint = now
				f.Checkpoint(ctx, useClock.Load()-idleTicks)
			}
		}
	}
}

// refresh recounts the files of every open partition (segments roll and
// go).
func (f *Files) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count = 0
	for p, n := range f.open {
		if l := p.log.Load(); l != nil {
			n = l.OpenFiles()
		}
		f.open[p] = n
		f.count += n
		if n > 0 && !f.inQueue[p] {
			f.inQueue[p] = true
			f.queue = append(f.queue, queued{p, p.lastUse.Load()})
		}
	}
}

// Evict frees idle partitions' descriptors while more files than the
// high-water mark (95% of the bound) are open, down to 90% of it.
func (f *Files) Evict() {
	// Segments roll and go: recount, at most every refreshEvery (an
	// opener over the high-water mark kicks this at every open).
	f.mu.Lock()
	stale := time.Since(f.refreshed) >= refreshEvery(len(f.open))
	if stale {
		f.refreshed = time.Now()
	}
	f.mu.Unlock()
	if stale {
		f.refresh()
	}
	f.mu.Lock()
	excess := f.count - f.max*9/10
	over := f.count > f.highWater()
	f.mu.Unlock()
	if over {
		f.evictSome(excess)
	}
}

// refreshEvery is how often Evict recounts the files of n open partitions:
// once a second, plus a second per 10,000 of them. The recount visits every
// open partition, released ones too (a sync may have reopened their files);
// once a second over 100,000 it was 9% of the broker's CPU. Between
// recounts only rolls and segment deletions go uncounted, which the quarter
// of the file limit left for sockets absorbs.
func refreshEvery(n int) time.Duration { return time.Duration(1+n/10000) * time.Second }

// highWater is where the background pass starts freeing descriptors (down
// to 90% of the bound), kicked by the open that passes it: 95%, so that
// openers seldom reach the bound and free room themselves, inside the
// request that needs it. With 100,000 partitions written at random under a
// 15,000-descriptor budget, every opener freed 17 partitions inline (a
// write and a close each), 19% of the broker's CPU on the produce path.
// Caller holds mu.
func (f *Files) highWater() int { return f.max - max(f.max/20, 1) }

// evictSome frees the descriptors of idle partitions holding at least want
// files (fewer if too many are in use), taking them from the queue's head:
// one that holds none any more is dropped, one used since it was queued
// goes to the tail with its new stamp, one in use (FreeFiles cannot lock
// it) too. It looks at each entry at most once per call.
func (f *Files) evictSome(want int) {
	f.evictMu.Lock()
	defer f.evictMu.Unlock()
	// Uses from now on are newer than any stamp in the queue.
	useClock.Add(1)
	start := time.Now()
	f.mu.Lock()
	look := len(f.queue) - f.head
	f.mu.Unlock()
	freed, closed := 0, 0
	for ; freed < want && look > 0; look-- {
		f.mu.Lock()
		if f.head == len(f.queue) {
			f.mu.Unlock()
			break
		}
		e := f.queue[f.head]
		f.queue[f.head] = queued{}
		f.head++
		if f.head > 1024 && f.head*2 > len(f.queue) {
			f.queue = append(f.queue[:0], f.queue[f.head:]...)
			f.head = 0
		}
		n := f.open[e.p]
		if n == 0 {
			delete(f.inQueue, e.p)
			f.mu.Unlock()
			continue
		}
		if used := e.p.lastUse.Load(); used > e.stamp {
			f.queue = append(f.queue, queued{e.p, used}) // a second chance
			f.mu.Unlock()
			continue
		}
		f.mu.Unlock()
		ok := e.p.FreeFiles()
		f.mu.Lock()
		if ok {
			freed += n
			closed++
		}
		if f.open[e.p] > 0 {
			f.queue = append(f.queue, queued{e.p, e.p.lastUse.Load()}) // in use, or reopened meanwhile
		} else {
			delete(f.inQueue, e.p)
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.evicted += int64(closed)
	f.mu.Unlock()
	f.lg.Debug("freed idle partitions' descriptors", "partitions", closed, "files", freed, "duration", time.Since(start))
}

// checkpointBatch bounds the partitions one recovery-checkpoint batch
// holds (their sync locks are held until its syncfs calls return).
const checkpointBatch = 1000

// Checkpoint writes the clean-shutdown state of open partitions changed
// since they were opened and not used since the useClock value idleSince.
// With a data dir, up to checkpointBatch partitions at a time share one
// storage.CloseBatch: two syncfs calls for all of them (three if segments
// were sealed since), where one by one each costs a few fsyncs (ten
// thousand partitions idle after a load would be tens of thousands of
// fsyncs competing with the produce path's).
func (f *Files) Checkpoint(ctx context.Context, idleSince int64) {
	f.mu.Lock()
	parts := make([]*Partition, 0, len(f.open))
	for p := range f.open {
		if p.lastUse.Load() < idleSince {
			parts = append(parts, p)
		}
	}
	f.mu.Unlock()
	n := 0
	var b *storage.CloseBatch
	var dones []func(error)
	commit := func() {
		if b == nil {
			return
		}
		err := b.Commit()
		if err != nil {
			f.lg.Warn("recovery checkpoint batch failed; the partitions stay unmarked", "partitions", len(dones), "err", err)
		}
		for _, done := range dones {
			done(err)
		}
		if err == nil {
			n += len(dones)
		}
		b, dones = nil, dones[:0]
	}
	for _, p := range parts {
		if ctx.Err() != nil {
			break
		}
		l := p.log.Load()
		if l == nil || l.Marked() {
			continue
		}
		if f.dataDir == "" {
			if err := p.Checkpoint(); err != nil {
				f.lg.Warn("recovery checkpoint failed", "topic", p.Topic(), "partition", p.Index(), "err", err)
				continue
			}
			n++
			continue
		}
		if b == nil {
			b = storage.NewCloseBatch(f.dataDir)
		}
		done, err := p.CheckpointIn(b)
		if err != nil {
			f.lg.Warn("recovery checkpoint failed", "topic", p.Topic(), "partition", p.Index(), "err", err)
			continue
		}
		if done != nil {
			dones = append(dones, done)
		}
		if len(dones) >= checkpointBatch {
			commit()
		}
	}
	commit()
	// A partition idle for a whole interval and now marked is closed: its
	// state (indexes, producer state, buffers) leaves memory, and closing
	// a marked log writes nothing. The next use opens it again.
	closed := 0
	for _, p := range parts {
		if ctx.Err() != nil {
			break
		}
		if l := p.log.Load(); l != nil && l.Marked() && p.lastUse.Load() < idleSince && p.tryClose() {
			closed++
		}
	}
	if closed > 0 {
		f.lg.Debug("idle partitions closed after their recovery checkpoint", "partitions", closed)
	}
	f.mu.Lock()
	f.checkpoints += int64(n)
	f.mu.Unlock()
}
