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
	if n == len(segs) {
		// The active segment expired too: seal it so it can go. Not
		// rolled (an append came in since, or it is not all durable):
		// it stays, and the sealed ones before it still go.
		rolled, err := p.log.RollActive(segs[n-1].Next)
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			b.log.Warn("retention: cannot roll the expired active segment", "topic", t.Name, "partition", p.index, "err", err)
		}
		if !rolled {
			if n--; n == 0 {
				return 0
			}
		}
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
	b.trimLeaderEpochs(p)
	if deleted > 0 {
		b.retention.segments.Add(int64(deleted))
		b.retention.bytes.Add(bytes)
		b.log.Info("retention: deleted segments", "topic", t.Name, "partition", p.index,
			"segments", deleted, "bytes", bytes, "log_start_offset", p.log.LogStartOffset())
	}
	return n
}

// expiredSegments returns how many leading segments retention deletes:
// segments wholly below hwm that are too old or push the partition over its
// size bound, or lie wholly below the log start already, at most budget. The
// last (active) segment counts only if it holds data; the caller must roll
// it before deleting it.
func expiredSegments(segs []storage.SegmentInfo, start, hwm, nowMs, retentionMs, retentionBytes int64, budget int) int {
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	n := 0
	for _, s := range segs {
		if n >= budget || s.Next > hwm || (!s.Sealed && s.Size == 0) {
			break
		}
		ts := s.MaxTimestamp
		if ts < 0 { // no record timestamp: Kafka's largestTimestamp is the file time
			ts = s.ModTimeMs
		}
		byTime := retentionMs >= 0 && nowMs-ts > retentionMs
		bySize := retentionBytes >= 0 && total-s.Size >= retentionBytes
		// Below the log start already (DeleteRecords): a sealed segment
		// goes without expiring, the active one only by expiry (Kafka's
		// deleteLogStartOffsetBreachedSegments needs a next segment).
		if !byTime && !bySize && (s.Next > start || !s.Sealed) {
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
