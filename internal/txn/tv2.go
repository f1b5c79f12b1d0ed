package txn

// Transaction version 2 (KIP-890 part 2). Clients that see the
// transaction.version feature at level 2 end every transaction with EndTxn
// v5+, which bumps the producer epoch (a new producer id when the epoch runs
// out) and returns it: the COMMIT/ABORT markers carry the new epoch, so a
// late or retried produce of the finished transaction is fenced at the
// partitions instead of silently joining the next one. They also skip
// AddPartitionsToTxn and AddOffsetsToTxn: a produce v12+ or TxnOffsetCommit
// v5+ enrols its partition or group itself (AddPartitions, AddGroup). An
// abort with nothing ongoing is legal and bumps the epoch too (a client
// resets its producer that way). Older clients keep the version 1 protocol
// (End) against the same coordinator.

import "github.com/twmb/franz-go/pkg/kerr"

// bump advances next's producer to its next epoch, issuing a new producer id
// when there is none or the epoch ran out. When the producer id changes
// while a transaction is open (open), next.Marker keeps the old id at an
// epoch above any it used, for the markers that close it; otherwise the
// markers carry the bumped epoch, which fences the old one at the
// partitions.
func (c *Coordinator) bump(next *Entry, open bool) error {
	if next.PID >= 0 && next.Epoch < maxEpoch {
		next.Epoch++
		return nil
	}
	npid, err := c.opts.Markers.AllocatePID()
	if err != nil {
		return err
	}
	if next.PID >= 0 && open {
		next.Marker = &Producer{next.PID, next.Epoch + 1}
	}
	next.PID, next.Epoch = npid, 0
	return nil
}

// EndV2 is EndTxn v5+: it commits or aborts the ongoing transaction with the
// epoch bumped, and returns the producer id and epoch to use next. A retry
// by the producer's previous epoch of an EndTxn that completed the same way
// answers the current ones; an abort with nothing ongoing bumps the epoch.
func (c *Coordinator) EndV2(id string, pid int64, epoch int16, commit bool) (int64, int16, *kerr.Error) {
	e := c.lookup(id, false)
	if e == nil {
		return -1, -1, kerr.InvalidProducerIDMapping
	}
	defer e.mu.Unlock()
	if p := e.Prev; p != nil && p.PID == pid && p.Epoch == epoch {
		switch {
		case e.Status == CompleteCommit && commit, e.Status == CompleteAbort && !commit:
			return e.PID, e.Epoch, nil
		case e.Status == PrepareCommit && commit, e.Status == PrepareAbort && !commit:
			if err := c.complete(e); err != nil {
				return -1, -1, c.undecidedErr(id, err)
			}
			return e.PID, e.Epoch, nil
		}
		return -1, -1, kerr.InvalidTxnState
	}
	if err := check(e, pid, epoch); err != nil {
		return -1, -1, err
	}
	next := clone(e.Entry)
	next.Prev = &Producer{e.PID, e.Epoch}
	switch e.Status {
	case Ongoing:
		next.Status = PrepareAbort
		if commit {
			next.Status = PrepareCommit
		} else {
			next.Offsets = nil
		}
	case Empty, CompleteCommit, CompleteAbort:
		if commit {
			return -1, -1, kerr.InvalidTxnState
		}
		next.Status = CompleteAbort // nothing to abort: only the bump
	default: // Prepare* of this epoch: a failed completion (version 1 end)
		if (e.Status == PrepareCommit) != commit {
			return -1, -1, kerr.InvalidTxnState
		}
		if err := c.complete(e); err != nil {
			return -1, -1, c.undecidedErr(id, err)
		}
		return e.PID, e.Epoch, nil
	}
	if err := c.bump(&next, e.Status == Ongoing); err != nil {
		return -1, -1, c.storageErr(id, err)
	}
	if err := c.update(e, next); err != nil {
		return -1, -1, c.storageErr(id, err)
	}
	if e.Status == PrepareCommit || e.Status == PrepareAbort {
		if err := c.complete(e); err != nil && !decided(err) {
			return -1, -1, c.storageErr(id, err)
		} // decided: the markers follow (pending_markers.go)
	}
	return e.PID, e.Epoch, nil
}
