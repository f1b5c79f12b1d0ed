package partition

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
)

// Files bounds the file descriptors held by open partitions (the broker's
// --max-open-files). A partition counts the files its log holds (one per
// segment). When the count passes the bound, Run closes the least recently
// used partitions nobody is using until it is back under 90% of it; a
// partition in use is never closed, so the bound is soft while more are in
// use at once. Run also checkpoints partitions idle for a while
// (storage.Log.Checkpoint), so a kill finds them trusted.
type Files struct {
	max int
	lg  *slog.Logger

	mu    sync.Mutex
	open  map[*Partition]int // files counted per open partition
	count int
	kick  chan struct{}

	evicted, checkpoints int64 // under mu

	evictMu sync.Mutex // one Evict at a time

	// dataDir, if set, is on the filesystem of the partitions: recovery
	// checkpoints of many partitions are then made durable together
	// (storage.CloseBatch) instead of with about seven fsyncs each.
	dataDir string
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
	return &Files{max: max(limit, 1), lg: lg, open: map[*Partition]int{}, kick: make(chan struct{}, 1)}
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
		f.evict(excess + makeRoomSlack)
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
	over := f.count > f.max
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
// go) and returns the open partitions, least recently used first.
func (f *Files) refresh() []*Partition {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := make([]*Partition, 0, len(f.open))
	f.count = 0
	for p := range f.open {
		n := f.open[p]
		if l := p.log.Load(); l != nil {
			n = l.OpenFiles()
		}
		f.open[p] = n
		f.count += n
		parts = append(parts, p)
	}
	return parts
}

// evictWorkers bounds the partitions closed at once (a changed partition's
// close fsyncs its tail and writes three small files).
const evictWorkers = 8

// Evict closes idle partitions while more files than the bound are open,
// down to 90% of it.
func (f *Files) Evict() {
	f.mu.Lock()
	excess := f.count - f.max*9/10
	over := f.count > f.max
	f.mu.Unlock()
	if over {
		f.evict(excess)
	}
}

// evict frees the descriptors of idle partitions holding at least want
// files: unchanged ones first (closed: that writes nothing), then changed
// ones (their descriptors released, state kept: Partition.tryEvict), least
// recently used first within each kind.
func (f *Files) evict(want int) {
	f.evictMu.Lock()
	defer f.evictMu.Unlock()
	useClock.Add(1) // uses after this pass are newer than any before it
	parts := f.refresh()
	f.mu.Lock()
	want = min(want, f.count-f.max*9/10)
	f.mu.Unlock()
	if want <= 0 {
		return
	}
	type cand struct {
		p       *Partition
		changed bool
		used    int64
	}
	cands := make([]cand, 0, len(parts))
	for _, p := range parts {
		l := p.log.Load()
		if l != nil && l.Released() {
			continue // holds no descriptor
		}
		cands = append(cands, cand{p, l == nil || !l.Marked(), p.lastUse.Load()})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.changed != b.changed {
			if a.changed {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.used, b.used)
	})
	excess := want
	start := time.Now()
	next := make(chan *Partition)
	var wg sync.WaitGroup
	var mu sync.Mutex
	// planned counts the files of partitions handed to a worker and not
	// yet known closed or kept, so no more are closed than needed.
	freed, planned, closed := 0, 0, 0
	workers := min(evictWorkers, max(1, excess/8))
	cond := sync.NewCond(&mu)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				n := 0
				if l := p.log.Load(); l != nil {
					n = l.OpenFiles()
				}
				ok := p.tryEvict()
				mu.Lock()
				planned -= max(n, 1)
				if ok {
					freed += n
					closed++
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	for _, c := range cands {
		n := 1
		if l := c.p.log.Load(); l != nil {
			n = max(l.OpenFiles(), 1)
		}
		mu.Lock()
		for freed < excess && freed+planned >= excess {
			cond.Wait() // enough in flight: see whether they close
		}
		done := freed >= excess
		if !done {
			planned += n
		}
		mu.Unlock()
		if done {
			break
		}
		next <- c.p
	}
	close(next)
	wg.Wait()
	f.mu.Lock()
	f.evicted += int64(closed)
	f.mu.Unlock()
	f.lg.Debug("closed idle partitions", "partitions", closed, "files", freed, "duration", time.Since(start))
}

// checkpointBatch bounds the partitions one recovery-checkpoint batch
// holds (their sync locks are held until its syncfs calls return).
const checkpointBatch = 1000

// Checkpoint writes the clean-shutdown state of open partitions changed
// since they were opened and not used since the useClock value idleSince.
// With a data dir, up to checkpointBatch partitions at a time share one
// storage.CloseBatch: three syncfs calls for all of them, where one by one
// each costs about seven fsyncs (ten thousand partitions idle after a load
// would be seventy thousand fsyncs competing with the produce path's).
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
	f.mu.Lock()
	f.checkpoints += int64(n)
	f.mu.Unlock()
}
