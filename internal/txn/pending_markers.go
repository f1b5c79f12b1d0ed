package txn

// Completion that outlives a request. Once a Prepare* record is durable the
// outcome of the transaction is decided; what is left (markers at every
// partition, a committed transaction's group offsets, the Complete* record)
// may fail for a while: on a cluster a partition's leader can be down or
// unreachable. As in Kafka, the decision is what a client is answered on:
// EndTxn succeeds once Prepare* is durable, a timeout's or a restart's
// abort counts as done, and the rest is retried in the background
// (RetryPending, every Options.RetryEvery) until every marker is written.
// Meanwhile the id stays Prepare*: its next AddPartitionsToTxn,
// InitProducerId or transactional produce gets CONCURRENT_TRANSACTIONS,
// which every client retries, and read_committed readers of a partition
// without its marker wait at the transaction's first offset (the last
// stable offset), as they do with Kafka.

import (
	"errors"
	"time"
)

const defaultRetryEvery = 200 * time.Millisecond

// incompleteError is what complete returns when a decided transaction
// could not be finished now; the id is queued for RetryPending.
type incompleteError struct{ err error }

func (e *incompleteError) Error() string { return e.err.Error() }
func (e *incompleteError) Unwrap() error { return e.err }

// decided reports whether err left the transaction decided (Prepare*
// durable) and queued for completion.
func decided(err error) bool {
	var ie *incompleteError
	return errors.As(err, &ie)
}

// deferCompletion queues id for RetryPending and wraps err. Caller holds the id's
// entry lock.
func (c *Coordinator) deferCompletion(id string, err error) error {
	c.pmu.Lock()
	n, queued := c.pending[id]
	c.pending[id] = n + 1
	c.pmu.Unlock()
	if !queued {
		c.lg.Warn("transaction decided; its markers are written when their partitions are reachable",
			"transactional_id", id, "err", err)
	} else if (n+1)%50 == 0 {
		c.lg.Warn("transaction still waiting for its markers", "transactional_id", id, "attempts", n+1, "err", err)
	}
	return &incompleteError{err}
}

// PendingCompletions returns how many decided transactions wait for their
// markers.
func (c *Coordinator) PendingCompletions() int {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return len(c.pending)
}

// RetryPending tries once more to finish every decided transaction whose
// markers could not all be written, and returns how many it finished.
func (c *Coordinator) RetryPending() int {
	c.pmu.Lock()
	ids := make([]string, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	c.pmu.Unlock()
	n := 0
	for _, id := range ids {
		select {
		case <-c.stop:
			return n
		default:
		}
		done := true
		if e := c.lookup(id, false); e != nil {
			if e.Status == PrepareCommit || e.Status == PrepareAbort {
				if err := c.complete(e); err != nil {
					done = false
				} else {
					c.lg.Info("transaction completed after its markers were delayed", "transactional_id", id, "status", e.Status)
					n++
				}
			}
			e.mu.Unlock()
		}
		if done {
			c.pmu.Lock()
			delete(c.pending, id)
			c.pmu.Unlock()
		}
	}
	return n
}

// startRetries starts the completion retry loop. Called by Open.
func (c *Coordinator) startRetries() {
	if c.opts.RetryEvery < 0 {
		close(c.retryDone)
		return
	}
	go c.every(c.opts.RetryEvery, defaultRetryEvery, c.retryDone, func() {
		if c.PendingCompletions() > 0 {
			c.RetryPending()
		}
	})
}
