package kafka

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wal"
)

// finishReplayAll makes the partitions the replay opened durable with one
// syncfs of the data directory (recovery did not fsync them) and loads
// their producer state; without syncfs each is synced on its own.
func (b *Broker) finishReplayAll(parts []*partition.Partition) error {
	if len(parts) == 0 {
		return nil
	}
	completes := make([]func(error) error, len(parts))
	errs := make([]error, len(parts))
	parallel(len(parts), func(i int) {
		p := parts[i]
		complete, err := p.PrepareSync()
		if err != nil {
			errs[i] = fmt.Errorf("kafka: sync %s-%d after WAL replay: %w", p.Topic(), p.Index(), err)
			return
		}
		completes[i] = complete
	})
	fsErr := storage.SyncFS(b.opts.DataDir)
	parallel(len(parts), func(i int) {
		if completes[i] != nil {
			errs[i] = completes[i](fsErr)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	parallel(len(parts), func(i int) { errs[i] = parts[i].LoadProducers() })
	return errors.Join(errs...)
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines (at most 8).
func parallel(n int, fn func(i int)) {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 8, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// replayWALs replays the committer's two WAL files (either may be nil or
// empty) in the order they were written: after a crash during a
// background checkpoint both hold records, and a partition found in both has
// its earlier batches in the file being checkpointed. The order is read
// from the first partition found in both (every such partition agrees:
// rounds switch files all at once); with none in both, the order does not
// matter.
func (b *Broker) replayWALs(w1, w2 *wal.WAL) error {
	if w1 != nil && w2 != nil {
		second, err := walWrittenFirst(w1, w2)
		if err != nil {
			return err
		}
		if second {
			w1, w2 = w2, w1
		}
	}
	return b.replayWAL(w1, w2)
}

// errOrderKnown stops walWrittenFirst's second pass.
var errOrderKnown = errors.New("order known")

// walWrittenFirst reports whether w2's records precede w1's: it compares the
// first base offsets of a partition both hold.
func walWrittenFirst(w1, w2 *wal.WAL) (bool, error) {
	firstBase := func(batches []byte) (int64, bool) {
		h, err := storage.ParseBatchHeader(batches)
		return h.BaseOffset, err == nil
	}
	first := map[wal.Key]int64{}
	if err := w1.Replay(func(key wal.Key, batches []byte) error {
		if _, ok := first[key]; !ok {
			if base, ok := firstBase(batches); ok {
				first[key] = base
			}
		}
		return nil
	}); err != nil {
		return false, err
	}
	if len(first) == 0 {
		return false, nil
	}
	w2First := false
	err := w2.Replay(func(key wal.Key, batches []byte) error {
		b1, ok := first[key]
		if !ok {
			return nil
		}
		if b2, ok := firstBase(batches); ok {
			w2First = b2 < b1
			return errOrderKnown
		}
		return nil
	})
	if err != nil && !errors.Is(err, errOrderKnown) {
		return false, err
	}
	return w2First, nil
}

// replayWAL appends to each partition log the batches of the WAL files
// (in order; nil ones skipped) beyond its end, makes the logs it opened
// durable and resets the files (keeping a copy first if a partition had a
// gap). The files are one replay: a partition opened for the first file's
// records and appended to from the second is finished (synced, producer
// state loaded) with the rest, after both. Records of partitions
// that no longer exist are skipped; batches already in a log (the common
// case: kill -9 keeps the page cache) are skipped; a batch that would leave a
// gap stops that partition's replay with an error line, since it means data
// below it was lost (never expected: the WAL is written in offset order).
func (b *Broker) replayWAL(files ...*wal.WAL) error {
	var ws []*wal.WAL
	for _, w := range files {
		if w != nil {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return nil
	}
	start := time.Now()
	byKey := map[wal.Key]*partition.Partition{}
	for _, ts := range b.topics {
		for _, p := range ts.parts {
			byKey[p.WALKey()] = p
		}
	}
	// Records go to workers by partition (each partition to one worker, so
	// its batches apply in order), which open partitions and append in
	// parallel: after a crash with thousands of partitions in the WAL,
	// opening them is most of the start time.
	workers := make([]*replayWorker, min(max(runtime.GOMAXPROCS(0), 2), 8))
	for i := range workers {
		workers[i] = &replayWorker{b: b, ch: make(chan replayRec, 64), touched: map[*partition.Partition]bool{},
			gap: map[*partition.Partition]bool{}, inOpen: map[*partition.Partition]bool{}}
		go workers[i].run()
	}
	owner := map[*partition.Partition]*replayWorker{}
	// pause waits until every worker has applied what it was sent.
	pause := func() error {
		var wg sync.WaitGroup
		wg.Add(len(workers))
		for _, w := range workers {
			w.ch <- replayRec{barrier: &wg}
		}
		wg.Wait()
		var errs []error
		for _, w := range workers {
			errs = append(errs, w.err)
		}
		return errors.Join(errs...)
	}
	// Partitions opened for the replay stay open (the open-file budget
	// closes only loaded ones); finish and close them whenever the budget
	// is exceeded, so a WAL naming more partitions than the file limit
	// allows still replays.
	openParts := func() []*partition.Partition {
		var open []*partition.Partition
		for _, w := range workers {
			open = append(open, w.open...)
			w.open = nil
			clear(w.inOpen)
		}
		return open
	}
	finish := func() error {
		if err := pause(); err != nil {
			return err
		}
		open := openParts()
		if err := b.finishReplayAll(open); err != nil {
			return err
		}
		// Durable and loaded now: give up their descriptors, keeping
		// their state (no close: that would fsync each one again and
		// write its recovery files).
		for _, p := range open {
			if !p.FreeFiles() {
				if err := p.Close(); err != nil {
					return fmt.Errorf("kafka: close %s-%d after WAL replay: %w", p.Topic(), p.Index(), err)
				}
			}
		}
		return nil
	}
	next := 0
	// Partitions sent to a worker while closed, not yet counted by the
	// budget (the workers open them concurrently): each will hold at least
	// one file. When they and the open ones would pass the budget, wait for
	// the workers, then close what the replay opened if the budget is
	// reached, so the replay never holds more files than the limit allows.
	opening := map[*partition.Partition]bool{}
	room := func() error {
		if b.files == nil {
			return nil
		}
		if st := b.files.Stats(); st.Open+len(opening) < st.Max {
			return nil
		}
		if err := pause(); err != nil {
			return err
		}
		clear(opening)
		if st := b.files.Stats(); st.Open+1 >= st.Max {
			return finish()
		}
		return nil
	}
	replay := func(key wal.Key, batches []byte) error {
		p := byKey[key]
		if p == nil {
			return nil
		}
		if !p.IsOpen() && !opening[p] {
			if err := room(); err != nil {
				return err
			}
			opening[p] = true
		}
		w := owner[p]
		if w == nil {
			w = workers[next%len(workers)]
			next++
			owner[p] = w
		}
		w.ch <- replayRec{p: p, batches: batches}
		return nil
	}
	var err error
	for _, w := range ws {
		if err = w.Replay(replay); err != nil {
			break
		}
	}
	if perr := pause(); err == nil {
		err = perr
	}
	for _, w := range workers {
		close(w.ch)
	}
	if err != nil {
		return err
	}
	if err := b.finishReplayAll(openParts()); err != nil {
		return err
	}
	var appended, skipped, touched, gaps int
	for _, w := range workers {
		appended += w.appended
		skipped += w.skipped
		touched += len(w.touched)
		gaps += len(w.gap)
	}
	if appended > 0 || skipped > 0 {
		b.log.Info("WAL replayed", "batches_restored", appended, "batches_already_present", skipped,
			"partitions_restored", touched, "workers", len(workers), "duration", time.Since(start).Round(time.Millisecond))
	}
	if gaps > 0 {
		// Never expected; keep the evidence rather than reset it away.
		for _, w := range ws {
			path, err := w.Keep()
			if err != nil {
				return fmt.Errorf("kafka: WAL replay found gaps and the WAL could not be kept: %w", err)
			}
			b.log.Error("WAL replay found gaps; a copy of the WAL was kept for inspection", "path", path, "partitions", gaps)
		}
	}
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Reset())
	}
	return errors.Join(errs...)
}

// replayRec is one WAL record for a replay worker, or a barrier.
type replayRec struct {
	p       *partition.Partition
	batches []byte
	barrier *sync.WaitGroup
}

// replayWorker applies the records of the partitions it owns (see
// replayWAL). Its fields are read by the dispatcher only after a barrier.
type replayWorker struct {
	b  *Broker
	ch chan replayRec
	// open: the partitions given records since the last finish, each
	// once (inOpen), which the next finish makes durable. Not "the ones
	// that were closed": a partition an earlier finish released (still
	// open, its files given up) and that gets more records must be
	// synced again before the WAL is reset.
	open              []*partition.Partition
	inOpen            map[*partition.Partition]bool
	touched, gap      map[*partition.Partition]bool
	appended, skipped int
	err               error
}

func (w *replayWorker) run() {
	for rec := range w.ch {
		if rec.barrier != nil {
			rec.barrier.Done()
			continue
		}
		p := rec.p
		if w.err != nil || w.gap[p] {
			continue
		}
		if !w.inOpen[p] {
			w.inOpen[p] = true
			w.open = append(w.open, p)
		}
		w.err = storage.SplitBatches(rec.batches, func(batch []byte) error {
			ok, err := p.ReplayWALBatch(batch)
			switch {
			case errors.Is(err, partition.ErrWALGap):
				w.b.log.Error("WAL replay found a gap: data below this batch is missing", "topic", p.Topic(),
					"partition", p.Index(), "err", err)
				w.gap[p] = true
			case err != nil:
				return err
			case ok:
				w.touched[p] = true
				w.appended++
			default:
				w.skipped++
			}
			return nil
		})
	}
}
