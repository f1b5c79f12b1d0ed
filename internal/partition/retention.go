package partition

// Retention of one partition: the Broker's sweep (internal/kafka) decides
// which topics and budgets; ApplyRetention deletes whole segments, oldest
// first, chosen by expiredSegments, and moves the log start past them.

import (
	"errors"
	"fmt"

	"github.com/chronik-stream/chronik/internal/storage"
)

// RetentionResult is what one ApplyRetention did.
type RetentionResult struct {
	Chosen  int   // segments chosen (counted against the sweep's budget)
	Deleted int   // segment files deleted
	Bytes   int64 // bytes deleted
}

// ApplyRetention deletes at most budget leading segments that are older than
// retentionMs or push the partition over retentionBytes (either < 0: no
// bound), all below the high watermark. The active segment may go too when
// it holds data and all of it is durable: it is rolled first (refused if
// anything was appended since it was looked at). A deleted partition
// (storage.ErrClosed) is not an error.
func (p *state) ApplyRetention(nowMs, retentionMs, retentionBytes int64, budget int) (RetentionResult, error) {
	if budget <= 0 || p.log.Failed() {
		return RetentionResult{}, nil
	}
	segs := p.log.Segments()
	n := expiredSegments(segs, p.log.LogStartOffset(), p.HighWatermark(), nowMs, retentionMs, retentionBytes, budget)
	if n == 0 {
		return RetentionResult{}, nil
	}
	if n == len(segs) {
		// The active segment expired too: seal it so it can go. Not
		// rolled (an append came in since, or it is not all durable):
		// it stays, and the sealed ones before it still go.
		rolled, err := p.log.RollActive(segs[n-1].Next)
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			p.lg.Warn("retention: cannot roll the expired active segment", "err", err)
		}
		if !rolled {
			if n--; n == 0 {
				return RetentionResult{}, nil
			}
		}
	}
	start := segs[n-1].Next
	deleted, bytes, err := p.SetLogStartOffset(max(start, p.log.LogStartOffset()))
	if errors.Is(err, storage.ErrClosed) { // topic deleted meanwhile
		return RetentionResult{Chosen: n}, nil
	}
	if err != nil {
		return RetentionResult{Chosen: n}, fmt.Errorf("partition: retention: move log start of %s-%d to %d: %w", p.topic, p.index, start, err)
	}
	return RetentionResult{Chosen: n, Deleted: deleted, Bytes: bytes}, nil
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
