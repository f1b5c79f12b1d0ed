package partition

import (
	"errors"
	"fmt"

	"github.com/chronik-stream/chronik/internal/storage"
)

// What the Partition's commit.WALLog methods (handle.go) call on the open
// state: the committer syncs partitions, through the shared WAL when that
// is cheaper.

func (p *state) Sync() (int64, error) { return p.log.Sync() }
func (p *state) MarkDurable(end int64) {
	p.log.MarkDurable(end)
}
func (p *state) Unsynced(dst []byte) ([]byte, int64, int64, error) { return p.log.Unsynced(dst) }

// ErrWALGap: a WAL batch starts beyond the log end, so data below it is
// missing (never expected: the WAL is written in offset order).
var ErrWALGap = errors.New("partition: WAL batch leaves a gap after the log end")

// ReplayWALBatch appends a batch found in the WAL if it continues the log
// (before LoadProducers) and reports whether it did; a batch already in the
// log (the common case: kill -9 keeps the page cache) is skipped. A batch
// beyond the log end answers ErrWALGap, unless the log allows a gap there
// (a follower's copy that skipped to its leader's log start).
func (p *state) ReplayWALBatch(batch []byte) (bool, error) {
	h, err := storage.ValidateBatch(batch)
	if err != nil {
		return false, fmt.Errorf("partition: WAL batch for %s-%d failed validation after its record CRC passed: %w", p.topic, p.index, err)
	}
	end := p.log.LogEndOffset()
	switch {
	case h.NextOffset() <= end:
		return false, nil
	case h.BaseOffset == end:
		if _, err := p.log.Append(batch); err != nil {
			return false, fmt.Errorf("partition: WAL replay into %s-%d: %w", p.topic, p.index, err)
		}
		return true, nil
	case h.BaseOffset > end && p.log.GapAllowed(h.BaseOffset):
		// A follower's copy skipped offsets its leader no longer had
		// (storage.Log.AppendAt made the gap legal before appending).
		if _, err := p.log.AppendAt(batch); err != nil {
			return false, fmt.Errorf("partition: WAL replay into %s-%d: %w", p.topic, p.index, err)
		}
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s-%d log end %d, batch base %d", ErrWALGap, p.topic, p.index, end, h.BaseOffset)
	}
}
