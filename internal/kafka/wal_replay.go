package kafka

import (
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wal"
)

// replayWAL appends to each partition log the WAL batches beyond its end,
// fsyncs the logs it touched and resets the WAL (keeping a copy first if a
// partition had a gap). Records of partitions
// that no longer exist are skipped; batches already in a log (the common
// case: kill -9 keeps the page cache) are skipped; a batch that would leave a
// gap stops that partition's replay with an error line, since it means data
// below it was lost (never expected: the WAL is written in offset order).
func (b *Broker) replayWAL(w *wal.WAL) error {
	if w == nil {
		return nil
	}
	start := time.Now()
	byKey := map[wal.Key]*partition{}
	for _, ts := range b.topics {
		for _, p := range ts.parts {
			byKey[p.WALKey()] = p
		}
	}
	touched := map[*partition]bool{}
	gap := map[*partition]bool{}
	var appended, skipped int
	err := w.Replay(func(key wal.Key, batches []byte) error {
		p := byKey[key]
		if p == nil || gap[p] {
			return nil
		}
		return storage.SplitBatches(batches, func(batch []byte) error {
			h, err := storage.ValidateBatch(batch)
			if err != nil {
				return fmt.Errorf("kafka: WAL batch for %s-%d failed validation after its record CRC passed: %w", p.topic, p.index, err)
			}
			end := p.log.LogEndOffset()
			switch {
			case h.NextOffset() <= end:
				skipped++
			case h.BaseOffset == end:
				if _, err := p.log.Append(batch); err != nil {
					return fmt.Errorf("kafka: WAL replay into %s-%d: %w", p.topic, p.index, err)
				}
				touched[p] = true
				appended++
			default:
				b.log.Error("WAL replay found a gap: data below this batch is missing", "topic", p.topic,
					"partition", p.index, "log_end", end, "batch_base", h.BaseOffset)
				gap[p] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for p := range touched {
		if _, err := p.log.Sync(); err != nil {
			return fmt.Errorf("kafka: sync %s-%d after WAL replay: %w", p.topic, p.index, err)
		}
	}
	if appended > 0 || skipped > 0 {
		b.log.Info("WAL replayed", "batches_restored", appended, "batches_already_present", skipped,
			"partitions_restored", len(touched), "duration", time.Since(start).Round(time.Millisecond))
	}
	if len(gap) > 0 {
		// Never expected; keep the evidence rather than reset it away.
		path, err := w.Keep()
		if err != nil {
			return fmt.Errorf("kafka: WAL replay found gaps and the WAL could not be kept: %w", err)
		}
		b.log.Error("WAL replay found gaps; a copy of the WAL was kept for inspection", "path", path, "partitions", len(gap))
	}
	return w.Reset()
}
