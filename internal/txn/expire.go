package txn

// Expiry of idle transactional ids (transactional.id.expiration.ms,
// Options.IDExpiration, 7 days): a background pass every minute forgets ids
// that are Empty, CompleteCommit or CompleteAbort and had no transition for
// longer than that (Entry.UpdateMs, Kafka's last update timestamp): it
// appends a tombstone (the id's key, a null value; replay deletes the id),
// and once that is durable marks the in-memory entry Dead (a request that was
// waiting for its lock looks the id up again and starts afresh) and removes
// it. The cleaner drops the id's records from __transaction_state after
// delete.retention.ms. A client using an expired id later simply gets a new
// producer id from InitProducerId, as with Kafka.

import "time"

const (
	defaultIDExpiration = 7 * 24 * time.Hour
	defaultExpireEvery  = time.Minute
)

// startExpiry gives entries replayed without an update time (records
// written before it existed) the current time, so they expire one full
// period from now, and starts the expiry loop. Called by Open before the
// coordinator is shared.
func (c *Coordinator) startExpiry() {
	if c.opts.IDExpiration <= 0 {
		c.opts.IDExpiration = defaultIDExpiration
	}
	now := c.opts.Now().UnixMilli()
	for _, e := range c.entries {
		if e.UpdateMs <= 0 {
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
		if err := c.appendRecord(e.ID, nil); err != nil {
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
