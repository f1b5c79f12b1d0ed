package txn

// Read-only views for the admin APIs (DescribeTransactions,
// ListTransactions). They answer from the durable state, the last record of
// each id in __transaction_state (Coordinator.latest), not from the entries: an
// entry's lock is held across a whole EndTxn including marker writes, and an
// admin request must not wait behind one. A transition is visible here as
// soon as its record is durable, i.e. at the same moment it takes effect.

import (
	"regexp"
	"slices"
)

// Statuses that Kafka has and this coordinator never keeps in its state:
// Dead marks an expired entry while it is removed (expire.go);
// PrepareEpochFence is Kafka's state while it fences an epoch, which this
// coordinator does within one locked request. Both are valid list filters.
const (
	Dead              Status = "Dead"
	PrepareEpochFence Status = "PrepareEpochFence"
)

// KnownStatus reports whether s is one of Kafka's transaction state names
// (the ListTransactions state filter is case sensitive in Kafka too).
func KnownStatus(s string) bool {
	switch Status(s) {
	case Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead, PrepareEpochFence:
		return true
	}
	return false
}

// Running reports whether e has a transaction in progress (started and not
// completed), the states in which StartMs is set.
func (e *Entry) Running() bool {
	switch e.Status {
	case Ongoing, PrepareCommit, PrepareAbort:
		return true
	}
	return false
}

// ListFilter selects transactional ids for List. Zero values select all.
type ListFilter struct {
	Statuses []Status // any of these
	PIDs     []int64  // any of these producer ids
	// MinRunningMs >= 0 keeps only transactions in progress for longer
	// than this many milliseconds (ListTransactions v1 DurationFilter);
	// negative keeps all.
	MinRunningMs int64
	// ID, if set, keeps only transactional ids it matches in full
	// (ListTransactions v2 TransactionalIdPattern).
	ID *regexp.Regexp
}

// snapshotLatest copies the map of latest records (the values are never
// modified in place, only replaced).
func (c *Coordinator) snapshotLatest(ids []string) map[string][]byte {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if ids == nil {
		out := make(map[string][]byte, len(c.latest))
		for id, v := range c.latest {
			out[id] = v
		}
		return out
	}
	out := make(map[string][]byte, len(ids))
	for _, id := range ids {
		if v, ok := c.latest[id]; ok {
			out[id] = v
		}
	}
	return out
}

// Describe returns the durable state of each id that exists, by id.
func (c *Coordinator) Describe(ids []string) map[string]Entry {
	if ids == nil {
		ids = []string{}
	}
	out := map[string]Entry{}
	for _, e := range decodeLatest(c.snapshotLatest(ids)) {
		out[e.ID] = e
	}
	return out
}

// List returns the durable state of the ids matching f, sorted by id.
func (c *Coordinator) List(f ListFilter) []Entry {
	now := c.opts.Now().UnixMilli()
	all := decodeLatest(c.snapshotLatest(nil))
	out := all[:0]
	for _, e := range all {
		if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, e.Status) {
			continue
		}
		if len(f.PIDs) > 0 && !slices.Contains(f.PIDs, e.PID) {
			continue
		}
		if f.MinRunningMs >= 0 && (!e.Running() || now-e.StartMs <= f.MinRunningMs) {
			continue
		}
		if f.ID != nil && !f.ID.MatchString(e.ID) {
			continue
		}
		out = append(out, e)
	}
	return out // decodeLatest sorted by id
}

// decodeLatest decodes a copy of latest values (not under any lock), sorted
// by id. Every value came from encodeValue or was decoded at replay, so
// none fails here.
func decodeLatest(vals map[string][]byte) []Entry {
	out := make([]Entry, 0, len(vals))
	for _, id := range sortedKeys(vals) {
		if e, err := decodeValue(id, vals[id]); err == nil {
			out = append(out, e)
		}
	}
	return out
}
