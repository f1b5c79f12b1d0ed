package txn

// State-log housekeeping.
//
// Compaction: every transition appends the whole entry of its id to
// __transaction_state, and replay keeps the last record per id, so the log
// only needs that last record. The coordinator keeps it (Coordinator.latest,
// updated with every append under logMu). When, after an append, the log is
// larger than compactAt (Options.CompactBytes, 16 MiB, or twice the size the
// last compaction left, whichever is larger, so a log of mostly live ids is
// not rewritten after every append), the latest records are written to a
// fresh log in __transaction_state.compact, fsynced and closed, the current
// log is closed and the two are swapped with storage.SwapCompacted (rename
// aside, rename in, fsync the parent, remove the old one); Open calls
// storage.FinishSwap first, which completes a swap cut between the renames
// and discards any other leftover. Every crash point therefore leaves a log
// that replays to the same entries. The compaction runs under logMu, so no
// transition is appended meanwhile; transitions wait for it (milliseconds
// for thousands of ids).
//
// Expiry (transactional.id.expiration.ms, Options.IDExpiration, 7 days): a
// background pass every minute forgets ids that are Empty, CompleteCommit or
// CompleteAbort and had no transition for longer than that: it appends a
// tombstone (the id as key, a null value; replay deletes the id), marks the
// in-memory entry Dead (a request that was waiting for its lock looks the id
// up again and starts afresh) and removes it. The next compaction drops the
// id from the log. A client using an expired id later simply gets a new
// producer id from InitProducerId, as with Kafka.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// StateDir is the state log's directory in the data dir.
const StateDir = "__transaction_state"

const (
	defaultCompactBytes = 16 << 20
	defaultIDExpiration = 7 * 24 * time.Hour
	defaultExpireEvery  = time.Minute
	// compactBatch bounds the records of one batch of the compacted log.
	compactBatch = 500
)

// errNoLog is returned when a failed compaction left no usable state log.
var errNoLog = errors.New("txn: state log unavailable after a failed compaction")

// startHousekeeping sets the compaction threshold, gives entries replayed
// without an update time (records written before it existed) the current
// time, so they expire one full period from now, and starts the expiry loop.
// Called by Open before the coordinator is shared.
func (c *Coordinator) startHousekeeping() {
	if c.opts.CompactBytes <= 0 {
		c.opts.CompactBytes = defaultCompactBytes
	}
	if c.opts.IDExpiration <= 0 {
		c.opts.IDExpiration = defaultIDExpiration
	}
	c.compactAt = c.opts.CompactBytes
	now := c.opts.Now().UnixMilli()
	for _, e := range c.entries {
		if e.UpdateMs == 0 {
			e.UpdateMs = now
		}
	}
	if c.opts.ExpireEvery < 0 {
		close(c.hkDone)
		return
	}
	go c.every(c.opts.ExpireEvery, defaultExpireEvery, c.hkDone, func() { c.ExpireIDs() })
}

// ExpireIDs forgets transactional ids idle (Empty or Complete*) for longer
// than Options.IDExpiration and returns how many it removed.
func (c *Coordinator) ExpireIDs() int {
	cutoff := c.opts.Now().Add(-c.opts.IDExpiration).UnixMilli()
	c.mu.Lock()
	var idle []*entry
	for _, e := range c.entries {
		idle = append(idle, e)
	}
	c.mu.Unlock()
	n := 0
	for _, e := range idle {
		e.mu.Lock()
		switch e.Status {
		case Empty, CompleteCommit, CompleteAbort:
		default:
			e.mu.Unlock()
			continue
		}
		if e.UpdateMs >= cutoff {
			e.mu.Unlock()
			continue
		}
		if err := c.persistTombstone(e.ID); err != nil {
			c.lg.Error("could not expire transactional id", "transactional_id", e.ID, "err", err)
			e.mu.Unlock()
			continue
		}
		// Under e.mu, so a request waiting for it finds the id gone.
		e.Status = Dead
		c.mu.Lock()
		if c.entries[e.ID] == e {
			delete(c.entries, e.ID)
		}
		c.mu.Unlock()
		e.mu.Unlock()
		c.lg.Info("expired idle transactional id", "transactional_id", e.ID)
		n++
	}
	return n
}

// persistTombstone appends and fsyncs the record that makes replay forget
// id. Caller holds id's entry lock.
func (c *Coordinator) persistTombstone(id string) error { return c.appendRecord(id, nil) }

// Compact rewrites the state log now, whatever its size (tests, tools).
func (c *Coordinator) Compact() error {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.compactLocked()
}

// maybeCompactLocked compacts the log if it passed the threshold. A failure
// is logged, not returned: the transition that triggered it is durable.
// Caller holds logMu.
func (c *Coordinator) maybeCompactLocked() {
	// compactAt is 0 while Open still recovers entries.
	if c.log == nil || c.compactAt == 0 || c.log.Size() <= c.compactAt {
		return
	}
	if err := c.compactLocked(); err != nil {
		c.lg.Error("transaction state log compaction failed", "err", err)
	}
}

func (c *Coordinator) hook(step string) {
	if c.opts.swapHook != nil {
		c.opts.swapHook(step)
	}
}

// compactLocked writes the latest record of every id to a fresh log and
// swaps it in (see the file comment). Caller holds logMu.
func (c *Coordinator) compactLocked() error {
	if c.log == nil {
		return errNoLog
	}
	dir := c.log.Dir()
	tmp := dir + storage.CompactSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("txn: compact: %w", err)
	}
	nl, err := storage.Open(tmp, storage.Options{SegmentBytes: 64 << 20, Logger: c.lg})
	if err != nil {
		return fmt.Errorf("txn: compact: open new log: %w", err)
	}
	ts := c.opts.Now().UnixMilli()
	recs := make([]kmsg.Record, 0, compactBatch)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		_, err := nl.Append(storage.EncodeBatch(ts, recs))
		recs = recs[:0]
		c.hook("written")
		return err
	}
	for _, id := range sortedKeys(c.latest) {
		recs = append(recs, kmsg.Record{Key: []byte(id), Value: c.latest[id]})
		if len(recs) == compactBatch {
			if err := flush(); err != nil {
				nl.Close()
				return fmt.Errorf("txn: compact: write: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		nl.Close()
		return fmt.Errorf("txn: compact: write: %w", err)
	}
	if _, err := nl.Sync(); err != nil {
		nl.Close()
		return fmt.Errorf("txn: compact: sync: %w", err)
	}
	if err := nl.Close(); err != nil {
		return fmt.Errorf("txn: compact: close new log: %w", err)
	}
	c.hook("synced")
	old := c.log
	c.log = nil
	if err := old.Close(); err != nil {
		// The old log may hold unsynced bytes it could not write; the
		// compacted one has every record it held, so carry on.
		c.lg.Warn("closing the transaction state log before its swap failed", "err", err)
	}
	c.hook("closed")
	if err := storage.SwapCompacted(dir, func(s storage.SwapStep) error {
		c.hook(fmt.Sprint("swap", int(s)))
		return nil
	}); err != nil {
		return c.reopenAfter(dir, err)
	}
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Logger: c.lg})
	if err != nil {
		return c.reopenAfter(dir, err)
	}
	c.log = l
	c.compactAt = max(c.opts.CompactBytes, 2*l.Size())
	c.lg.Info("transaction state log compacted", "transactional_ids", len(c.latest), "bytes", l.Size())
	return nil
}

// reopenAfter repairs the directories after a failed swap (as Open would)
// and reopens the log; if even that fails the coordinator answers
// transitions with errors until restarted. Caller holds logMu.
func (c *Coordinator) reopenAfter(dir string, cause error) error {
	if err := storage.FinishSwap(dir); err != nil {
		return errors.Join(cause, err)
	}
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Logger: c.lg})
	if err != nil {
		return errors.Join(cause, fmt.Errorf("txn: reopen state log: %w", err))
	}
	c.log = l
	return cause
}

// LogSize is the state log's size in bytes (0 if unavailable).
func (c *Coordinator) LogSize() int64 {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if c.log == nil {
		return 0
	}
	return c.log.Size()
}

// decodeLatest decodes a copy of latest values (not under any lock).
func decodeLatest(vals map[string][]byte) []Entry {
	out := make([]Entry, 0, len(vals))
	for _, id := range sortedKeys(vals) {
		var e Entry
		if json.Unmarshal(vals[id], &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// stateDir is where Open keeps the state log (tests).
func stateDir(dataDir string) string { return filepath.Join(dataDir, StateDir) }
