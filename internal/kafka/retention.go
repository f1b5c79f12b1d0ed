package kafka

// Retention: a background sweep owned by the Broker deletes whole segments,
// oldest first, of topics whose cleanup.policy includes "delete", by
//
//   - time (retention.ms >= 0): a segment whose largest record timestamp (from
//     its time index, as Kafka does; the file's modification time if no
//     record has one) is older than retention.ms, stopping at the first
//     segment that is young enough;
//   - size (retention.bytes >= 0): the oldest segments while the partition
//     without them would still be at least retention.bytes large.
//
// Only segments wholly below the high watermark are chosen. The active
// segment may be too, as in Kafka (UnifiedLog.deletableSegments), when it
// holds data and all of it is durable (high watermark == log end): it is
// rolled first (storage.Log.RollActive, refused if anything was appended
// since it was looked at) and then deleted like a sealed one, so a quiet
// partition whose records all expired ends up empty with its log start at
// its log end, and the next append continues at that offset. The log start
// offset moves to the first offset after the deleted segments (persisted by
// storage before the files go), so fetches below it answer
// OFFSET_OUT_OF_RANGE and consumers reset; the leader-epoch checkpoint is
// trimmed to it.
//
// Work per pass is bounded (retentionMaxSegmentsPerPass); the rest waits for
// the next pass. Configs are read from the current metadata image on every
// pass, so AlterConfigs changes apply at the next pass.

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
)

// retentionMaxSegmentsPerPass bounds the deletions of one sweep.
const retentionMaxSegmentsPerPass = 256

// sweepOpensPerPass bounds how many closed partitions not opened since
// start one retention or cleaner pass opens to look at (partition.
// SweepOpens): with 100,000 partitions the first passes after a start
// look at them a thousand at a time.
const sweepOpensPerPass = 1000

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
	opens := partition.NewSweepOpens(sweepOpensPerPass)
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
		for i, p := range ts.parts {
			if b.leads(ts.meta, int32(i)) { // another broker's partition has no files here
				budget -= b.applyRetention(p, t, now, retentionMs, retentionBytes, budget, opens)
			}
		}
	}
}

// applyRetention deletes at most budget segments of p
// (partition.ApplyRetention) and returns how many it chose.
func (b *Broker) applyRetention(p *partition.Partition, t *metadata.Topic, now time.Time, retentionMs, retentionBytes int64, budget int, opens *partition.SweepOpens) int {
	res, err := p.ApplyRetention(now.UnixMilli(), retentionMs, retentionBytes, budget, opens)
	if err != nil {
		b.log.Warn("retention: cannot move log start", "topic", t.Name, "partition", p.Index(), "err", err)
		return res.Chosen
	}
	if res.Deleted > 0 {
		b.retention.segments.Add(int64(res.Deleted))
		b.retention.bytes.Add(res.Bytes)
		b.log.Info("retention: deleted segments", "topic", t.Name, "partition", p.Index(),
			"segments", res.Deleted, "bytes", res.Bytes)
	}
	return res.Chosen
}

// sweepProducers forgets idle producers' state in every partition
// (producer.id.expiration.ms; Partition.ExpireProducers).
func (b *Broker) sweepProducers(now time.Time) {
	ttl := b.opts.ProducerIDExpiration
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	b.mu.RLock()
	var parts []*partition.Partition
	for _, ts := range b.topics {
		parts = append(parts, ts.parts...)
	}
	b.mu.RUnlock()
	n := 0
	for _, p := range parts {
		n += p.ExpireProducers(now.UnixMilli(), ttl)
	}
	if n > 0 {
		b.log.Info("producer state expired", "producers", n, "producer_id_expiration", ttl)
	}
}
