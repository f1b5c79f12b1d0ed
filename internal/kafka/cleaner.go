package kafka

// Log compaction: the retention sweep's goroutine also runs the cleaner, once
// per pass, over topics whose cleanup.policy includes "compact" (alone or as
// "compact,delete"). For each partition storage.Log.Clean checks the dirty
// ratio (min.cleanable.dirty.ratio) over the sealed, fsynced segments below
// the high watermark whose batches are all older than min.compaction.lag.ms,
// and rewrites them keeping the latest record per key with its original
// offset. Tombstones go delete.retention.ms after the pass that first kept
// them (the delete horizon stamped into their batch, as Kafka does), and
// the batch holding a producer's last sequence keeps its header when all
// its records go (partition.Clean), so producer state rebuilt from the
// log after a crash still knows the producer's epoch and sequence.
//
// Work per pass is bounded: cleanerMaxBytesPerPass of segments rewritten
// over all partitions (at least one segment), the rest waits for the next
// pass. Configs are read from the current metadata image on every pass.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cleanerMaxBytesPerPass bounds the segment bytes one pass rewrites.
const cleanerMaxBytesPerPass = 256 << 20

// cleanerState holds the cleaner's cumulative counters.
type cleanerState struct {
	runs, bytes, records atomic.Int64
}

// CleanerStats are cumulative cleaner counters (for metrics).
type CleanerStats struct {
	Runs, BytesReclaimed, RecordsRemoved int64
}

// Cleaner returns what the log cleaner did since start.
func (b *Broker) Cleaner() CleanerStats {
	return CleanerStats{Runs: b.cleaner.runs.Load(), BytesReclaimed: b.cleaner.bytes.Load(), RecordsRemoved: b.cleaner.records.Load()}
}

// isCompacted reports whether t's cleanup.policy includes compact.
func (b *Broker) isCompacted(t *metadata.Topic) bool {
	return strings.Contains(b.topicConfig(t, "cleanup.policy"), "compact")
}

// sweepCleaner runs one bounded cleaner pass over every compacted partition.
func (b *Broker) sweepCleaner(ctx context.Context, now time.Time) {
	budget := int64(cleanerMaxBytesPerPass)
	opens := partition.NewSweepOpens(sweepOpensPerPass)
	for _, t := range b.meta.Image().SortedTopics() {
		if ctx.Err() != nil || budget <= 0 {
			return
		}
		if !b.isCompacted(t) {
			continue
		}
		ratio, err := strconv.ParseFloat(b.topicConfig(t, "min.cleanable.dirty.ratio"), 64)
		if err != nil {
			ratio = 0.5
		}
		b.mu.RLock()
		ts := b.topics[t.Name]
		b.mu.RUnlock()
		if ts == nil {
			continue
		}
		for i, p := range ts.parts {
			if budget <= 0 || ctx.Err() != nil {
				return
			}
			if !b.leads(ts.meta, int32(i)) {
				continue // another broker's partition has no files here
			}
			budget -= b.cleanPartition(p, t, opens, storage.CleanOptions{
				Now: now, MinLagMs: b.topicInt(t, "min.compaction.lag.ms"),
				DeleteRetentionMs: b.topicInt(t, "delete.retention.ms"), MinDirtyRatio: ratio, MaxBytes: budget,
			})
		}
	}
}

// cleanPartition cleans one partition (partition.Clean) and returns the
// bytes it examined.
func (b *Broker) cleanPartition(p *partition.Partition, t *metadata.Topic, opens *partition.SweepOpens, o storage.CleanOptions) int64 {
	res, before, err := p.Clean(o, opens)
	if errors.Is(err, storage.ErrClosed) { // topic deleted meanwhile
		return 0
	}
	if err != nil {
		b.log.Warn("cleaner: compaction failed", "topic", t.Name, "partition", p.Index(), "err", err)
		return before
	}
	if !res.Ran {
		return 0
	}
	b.cleaner.runs.Add(1)
	b.cleaner.bytes.Add(res.BytesReclaimed)
	b.cleaner.records.Add(res.RecordsRemoved)
	if res.Segments > 0 {
		b.log.Info("cleaner: compacted partition", "topic", t.Name, "partition", p.Index(),
			"segments", res.Segments, "records_removed", res.RecordsRemoved, "bytes_reclaimed", res.BytesReclaimed)
	}
	return before
}

// errNoKey: Kafka rejects records without a key on compacted topics with
// INVALID_RECORD (produceErrCode's default).
var errNoKey = errors.New("compacted topic cannot accept a record without a key")

// requireKeys decodes (decompressing) the records of a batch bound for a
// compacted topic and rejects it if any record has a null key. Only
// compacted topics pay for the decoding.
func requireKeys(batch []byte) error {
	return storage.DecodeRecords(batch, storage.Decompress, func(r *kmsg.Record) error {
		if r.Key == nil {
			return errNoKey
		}
		return nil
	})
}
