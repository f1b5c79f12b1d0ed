package txn

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// maxEpoch is the last usable epoch; past it a new producer id is issued.
const maxEpoch = 32766

// InitProducerID gives transactional id id its producer id and a bumped
// epoch, fencing every older epoch. An ongoing transaction of the old epoch
// is aborted first (markers written with the new epoch, so partitions fence
// the old producer too). pid/epoch >= 0 is KIP-360's "I am this producer":
// it must match the current state.
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, pid int64, epoch int16) (int64, int16, *kerr.Error) {
	if timeoutMs <= 0 || timeoutMs > c.opts.MaxTimeoutMs {
		return -1, -1, kerr.InvalidTransactionTimeout
	}
	e := c.lookup(id, true)
	defer e.mu.Unlock()
	if pid >= 0 && epoch >= 0 && e.PID >= 0 {
		switch {
		case pid != e.PID:
			return -1, -1, kerr.ProducerFenced
		case epoch < e.Epoch && !(e.TimedOut && epoch == e.Epoch-1):
			// KIP-588: the producer whose transaction timed out may
			// still recover with the epoch it had.
			return -1, -1, kerr.ProducerFenced
		}
	}
	switch e.Status {
	case PrepareCommit, PrepareAbort:
		// A decided transaction still waiting for its markers: try
		// them now; until they are written the producer waits.
		if err := c.complete(e); err != nil {
			return -1, -1, c.undecidedErr(id, err)
		}
	}
	next := clone(e.Entry)
	next.TimeoutMs = timeoutMs
	next.TimedOut = false
	next.Prev = nil
	if err := c.bump(&next, e.Status == Ongoing); err != nil {
		return -1, -1, c.storageErr(id, err)
	}
	if e.Status == Ongoing {
		// Abort with the new epoch: the partitions fence the old one.
		// TimedOut: should the markers wait (CONCURRENT_TRANSACTIONS),
		// the producer's retry with the epoch it had is still its own
		// (Kafka accepts the last epoch too).
		next.Status = PrepareAbort
		next.Offsets = nil
		next.TimedOut = next.PID == e.PID
		if err := c.update(e, next); err != nil {
			return -1, -1, c.storageErr(id, err)
		}
		if err := c.complete(e); err != nil {
			return -1, -1, c.undecidedErr(id, err)
		}
		return e.PID, e.Epoch, nil
	}
	next.Status = Empty // a retried EndTxn of the old epoch is fenced anyway
	if err := c.update(e, next); err != nil {
		return -1, -1, c.storageErr(id, err)
	}
	return e.PID, e.Epoch, nil
}

// check validates a request's producer id and epoch against e. Caller holds
// e.mu.
// producer locks id's entry and checks pid/epoch against it. On success the
// caller owns e.mu and must unlock it.
func (c *Coordinator) producer(id string, pid int64, epoch int16) (*entry, *kerr.Error) {
	e := c.lookup(id, false)
	if e == nil {
		return nil, kerr.InvalidProducerIDMapping
	}
	if err := check(e, pid, epoch); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	return e, nil
}

func check(e *entry, pid int64, epoch int16) *kerr.Error {
	switch {
	case e == nil || e.PID < 0:
		return kerr.InvalidProducerIDMapping
	case pid != e.PID:
		return kerr.InvalidProducerIDMapping
	case epoch < e.Epoch:
		return kerr.ProducerFenced
	case epoch > e.Epoch:
		return kerr.InvalidProducerEpoch
	}
	return nil
}

// begin returns e's state with the transaction started if it was not.
func (c *Coordinator) begin(e *entry) (Entry, *kerr.Error) {
	next := clone(e.Entry)
	switch e.Status {
	case Ongoing:
	case Empty, CompleteCommit, CompleteAbort:
		next.Status = Ongoing
		next.StartMs = c.opts.Now().UnixMilli()
	default:
		return next, kerr.ConcurrentTransactions
	}
	return next, nil
}

// AddPartitions enrols partitions in the producer's transaction, starting it
// if needed.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts []TP) *kerr.Error {
	e, err := c.producer(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	next, kerrv := c.begin(e)
	if kerrv != nil {
		return kerrv
	}
	changed := next.Status != e.Status
	for _, tp := range parts {
		if !slices.Contains(next.Partitions, tp) {
			next.Partitions = append(next.Partitions, tp)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.update(e, next); err != nil {
		return c.storageErr(id, err)
	}
	return nil
}

// AddGroup enrols a consumer group's offsets in the transaction.
func (c *Coordinator) AddGroup(id string, pid int64, epoch int16, group string) *kerr.Error {
	e, err := c.producer(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	next, kerrv := c.begin(e)
	if kerrv != nil {
		return kerrv
	}
	if next.Status == e.Status && slices.Contains(next.Groups, group) {
		return nil
	}
	if !slices.Contains(next.Groups, group) {
		next.Groups = append(next.Groups, group)
	}
	if err := c.update(e, next); err != nil {
		return c.storageErr(id, err)
	}
	return nil
}

// CommitOffsets stages offsets of a group added with AddGroup; they become
// visible when the transaction commits and are dropped if it aborts. The
// staged offsets are logged (durably) before the answer, so a transaction
// survives a broker restart with them (recoverEntry).
func (c *Coordinator) CommitOffsets(id string, pid int64, epoch int16, group string, offsets []Offset) *kerr.Error {
	e, err := c.producer(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.Status != Ongoing || !slices.Contains(e.Groups, group) {
		return kerr.InvalidTxnState
	}
	next := clone(e.Entry)
	if next.Offsets == nil {
		next.Offsets = map[string][]Offset{}
	}
	staged := next.Offsets[group]
	for _, o := range offsets {
		i := slices.IndexFunc(staged, func(s Offset) bool { return s.TP == o.TP })
		if i >= 0 {
			staged[i] = o
		} else {
			staged = append(staged, o)
		}
	}
	next.Offsets[group] = staged
	if err := c.update(e, next); err != nil {
		return c.storageErr(id, err)
	}
	return nil
}

// End commits or aborts the producer's transaction. Retrying an End that
// already completed the same way answers success.
func (c *Coordinator) End(id string, pid int64, epoch int16, commit bool) *kerr.Error {
	e, err := c.producer(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	switch e.Status {
	case Ongoing:
		if err := c.finish(e, commit); err != nil && !decided(err) {
			return c.storageErr(id, err)
		}
		return nil // decided: the markers follow (pending_markers.go)
	case CompleteCommit:
		if commit {
			return nil
		}
	case CompleteAbort:
		if !commit {
			return nil
		}
	case PrepareCommit, PrepareAbort:
		if (e.Status == PrepareCommit) != commit {
			return kerr.InvalidTxnState
		}
		if err := c.complete(e); err != nil {
			return c.undecidedErr(id, err)
		}
		return nil
	}
	return kerr.InvalidTxnState
}

// Enrolled reports whether a transactional produce of pid/epoch to tp may be
// appended: the partition is in the id's ongoing transaction. It is Verify
// with the codes a produce answers.
func (c *Coordinator) Enrolled(id string, pid int64, epoch int16, tp TP) *kerr.Error {
	switch err := c.Verify(id, pid, epoch, tp); err {
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch
	case kerr.ConcurrentTransactions:
		return kerr.InvalidTxnState
	default:
		return err
	}
}

// State returns a copy of id's state (false if unknown).
func (c *Coordinator) State(id string) (Entry, bool) {
	e := c.lookup(id, false)
	if e == nil {
		return Entry{}, false
	}
	defer e.mu.Unlock()
	return clone(e.Entry), true
}

// AbortExpired aborts ongoing transactions older than their timeout, bumping
// the epoch (as Kafka does) so the producer that let it expire is fenced.
// It returns how many it aborted.
func (c *Coordinator) AbortExpired() int {
	now := c.opts.Now().UnixMilli()
	c.mu.Lock()
	var ids []string
	for id := range c.entries {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	n := 0
	for _, id := range ids {
		e := c.lookup(id, false)
		if e == nil {
			continue
		}
		if e.Status == Ongoing && now-e.StartMs > int64(e.TimeoutMs) {
			if err := c.abortFencing(e); err != nil && !decided(err) {
				c.storageErr(id, err)
			} else {
				c.lg.Info("aborted timed-out transaction", "transactional_id", id)
				n++
			}
		}
		e.mu.Unlock()
	}
	return n
}

// abortFencing aborts e's ongoing transaction on the broker's own initiative
// (a timeout, or a restart that found it open) with the epoch bumped, as
// Kafka does for timeouts: the markers of the new epoch fence the producer
// at every partition, and its later requests with the old epoch fail
// instead of starting a new transaction that it would take for the rest of
// the aborted one (and commit: the records it sent before the abort lost,
// the rest committed). TimedOut lets it re-initialise with the old epoch
// (KIP-588). At the last epoch the producer gets a new id (bump). Caller
// holds e.mu.
func (c *Coordinator) abortFencing(e *entry) error {
	next := clone(e.Entry)
	next.Prev = nil
	if err := c.bump(&next, true); err != nil {
		return err
	}
	// A new producer id (the epoch ran out) leaves nothing to recover into.
	next.TimedOut = next.PID == e.PID
	next.Status = PrepareAbort
	next.Offsets = nil
	if err := c.update(e, next); err != nil {
		return err
	}
	return c.complete(e)
}
