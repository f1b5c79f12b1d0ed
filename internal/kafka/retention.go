package kafka

// Retention: a background sweep owned by the Broker deletes whole sealed
// segments of topics whose cleanup.policy includes "delete", by
//
//   - time (retention.ms >= 0): a segment whose largest record timestamp (from
//     its time index, as Kafka does) is older than retention.ms, oldest
//     first, stopping at the first segment that is young enough;
//   - size (retention.bytes >= 0): the oldest segments while the partition
//     without them would still be at least retention.bytes large.
//
// Only sealed segments whose data is below the high watermark are chosen; the
// active segment never goes (so a partition keeps at least its last segment;
// Kafka would roll an expired active segment first). The log start offset moves to the first offset
// after the deleted segments (persisted by storage before the files go), so
// fetches below it answer OFFSET_OUT_OF_RANGE and consumers reset.
//
// Work per pass is bounded (retentionMaxSegmentsPerPass); the rest waits for
// the next pass. Configs are read from the current metadata image on every
// pass, so AlterConfigs changes apply at the next pass.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
)

// retentionMaxSegmentsPerPass bounds the deletions of one sweep.
const retentionMaxSegmentsPerPass = 256

// RetentionStats are cumulative retention counters (for metrics).
type RetentionStats struct {
	SegmentsDeleted, BytesDeleted int64
}

// Retention returns what the retention sweep deleted since start.
func (b *Broker) Retention() RetentionStats {
	return RetentionStats{SegmentsDeleted: b.retention.segments.Load(), BytesDeleted: b.retention.bytes.Load()}
}

// StartRetention runs the retention sweep, then the log cleaner, every
// interval until StopRetention.
// It may be called once.
func (b *Broker) StartRetention(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	b.retention.stop = func() { cancel(); wg.Wait() }
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.sweepRetention(ctx, time.Now())
				b.sweepCleaner(ctx, time.Now()) // cleaner.go: compaction shares the goroutine
				b.sweepProducers(time.Now())
			}
		}
	}()
}

// StopRetention stops the sweep and waits for a running pass to end. Call it
// before Close.
func (b *Broker) StopRetention() {
	if b.retention.stop != nil {
		b.retention.stop()
		b.retention.stop = nil
	}
}

// sweepRetention runs one bounded pass over every partition.
func (b *Broker) sweepRetention(ctx context.Context, now time.Time) {
	im := b.meta.Image()
	budget := retentionMaxSegmentsPerPass
	for _, t := range im.SortedTopics() {
		if ctx.Err() != nil || budget <= 0 {
			return
		}
		if !strings.Contains(b.topicConfig(t, "cleanup.policy"), "delete") {
			continue
		}
		retentionMs, retentionBytes := b.topicInt(t, "retention.ms"), b.topicInt(t, "retention.bytes")
		if retentionMs < 0 && retentionBytes < 0 {
			continue
		}
		b.mu.RLock()
		ts := b.topics[t.Name]
		b.mu.RUnlock()
		if ts == nil {
			continue
		}
		for _, p := range ts.parts {
			budget -= b.applyRetention(p, t, now, retentionMs, retentionBytes, budget)
		}
	}
}

// applyRetention deletes at most budget segments of p and returns how many
// it chose.
func (b *Broker) applyRetention(p *partition, t *metadata.Topic, now time.Time, retentionMs, retentionBytes int64, budget int) int {
	if budget <= 0 || p.log.Failed() {
		return 0
	}
	segs := p.log.Segments()
	n := expiredSegments(segs, p.log.LogStartOffset(), p.highWatermark(), now.UnixMilli(), retentionMs, retentionBytes, budget)
	if n == 0 {
		return 0
	}
	start := segs[n-1].Next
	deleted, bytes, err := p.log.SetLogStartOffset(max(start, p.log.LogStartOffset()))
	if errors.Is(err, storage.ErrClosed) { // topic deleted meanwhile
		return n
	}
	if err != nil {
		b.log.Warn("retention: cannot move log start", "topic", t.Name, "partition", p.index, "offset", start, "err", err)
		return n
	}
	if deleted > 0 {
		b.retention.segments.Add(int64(deleted))
		b.retention.bytes.Add(bytes)
		b.log.Info("retention: deleted segments", "topic", t.Name, "partition", p.index,
			"segments", deleted, "bytes", bytes, "log_start_offset", p.log.LogStartOffset())
	}
	return n
}

// expiredSegments returns how many leading segments retention deletes: sealed
// segments wholly below hwm that are too old or push the partition over its
// size bound, or lie wholly below the log start already, at most budget.
func expiredSegments(segs []storage.SegmentInfo, start, hwm, nowMs, retentionMs, retentionBytes int64, budget int) int {
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	n := 0
	for _, s := range segs {
		if n >= budget || !s.Sealed || s.Next > hwm {
			break
		}
		// A segment without timestamps counts as old: nothing in it can be
		// found by time, and Kafka would use its file time instead.
		byTime := retentionMs >= 0 && nowMs-s.MaxTimestamp > retentionMs
		bySize := retentionBytes >= 0 && total-s.Size >= retentionBytes
		if !byTime && !bySize && s.Next > start {
			break
		}
		total -= s.Size
		n++
	}
	return n
}

// sweepProducers forgets idle producers' state in every partition
// (producer.id.expiration.ms; partition.expireProducers).
func (b *Broker) sweepProducers(now time.Time) {
	ttl := b.opts.ProducerIDExpiration
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	b.mu.RLock()
	var parts []*partition
	for _, ts := range b.topics {
		parts = append(parts, ts.parts...)
	}
	b.mu.RUnlock()
	n := 0
	for _, p := range parts {
		n += p.expireProducers(now.UnixMilli(), ttl)
	}
	if n > 0 {
		b.log.Info("producer state expired", "producers", n, "producer_id_expiration", ttl)
	}
}
