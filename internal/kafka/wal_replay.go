package kafka

import (
	"errors"
	"fmt"
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
	completes := make([]func(error) error, 0, len(parts))
	var errs []error
	for _, p := range parts {
		complete, err := p.PrepareSync()
		if err != nil {
			errs = append(errs, fmt.Errorf("kafka: sync %s-%d after WAL replay: %w", p.Topic(), p.Index(), err))
			continue
		}
		completes = append(completes, complete)
	}
	fsErr := storage.SyncFS(b.opts.DataDir)
	for _, complete := range completes {
		errs = append(errs, complete(fsErr))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, p := range parts {
		if err := p.LoadProducers(); err != nil {
			return err
		}
	}
	return nil
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
	touched := map[*partition.Partition]bool{}
	gap := map[*partition.Partition]bool{}
	var appended, skipped int
	// Partitions opened for the replay stay open (the open-file budget
	// closes only loaded ones); finish and close them whenever the budget
	// is exceeded, so a WAL naming more partitions than the file limit
	// allows still replays.
	var open []*partition.Partition
	finish := func() error {
		if err := b.finishReplayAll(open); err != nil {
			return err
		}
		for _, p := range open {
			if err := p.Close(); err != nil {
				return fmt.Errorf("kafka: close %s-%d after WAL replay: %w", p.Topic(), p.Index(), err)
			}
		}
		open = open[:0]
		return nil
	}
	replay := func(key wal.Key, batches []byte) error {
		p := byKey[key]
		if p == nil || gap[p] {
			return nil
		}
		if !p.IsOpen() {
			if b.files != nil && b.files.Over() {
				if err := finish(); err != nil {
					return err
				}
			}
			open = append(open, p)
		}
		return storage.SplitBatches(batches, func(batch []byte) error {
			ok, err := p.ReplayWALBatch(batch)
			switch {
			case errors.Is(err, partition.ErrWALGap):
				b.log.Error("WAL replay found a gap: data below this batch is missing", "topic", p.Topic(),
					"partition", p.Index(), "err", err)
				gap[p] = true
			case err != nil:
				return err
			case ok:
				touched[p] = true
				appended++
			default:
				skipped++
			}
			return nil
		})
	}
	for _, w := range ws {
		if err := w.Replay(replay); err != nil {
			return err
		}
	}
	if err := b.finishReplayAll(open); err != nil {
		return err
	}
	if appended > 0 || skipped > 0 {
		b.log.Info("WAL replayed", "batches_restored", appended, "batches_already_present", skipped,
			"partitions_restored", len(touched), "duration", time.Since(start).Round(time.Millisecond))
	}
	if len(gap) > 0 {
		// Never expected; keep the evidence rather than reset it away.
		for _, w := range ws {
			path, err := w.Keep()
			if err != nil {
				return fmt.Errorf("kafka: WAL replay found gaps and the WAL could not be kept: %w", err)
			}
			b.log.Error("WAL replay found gaps; a copy of the WAL was kept for inspection", "path", path, "partitions", len(gap))
		}
	}
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Reset())
	}
	return errors.Join(errs...)
}
