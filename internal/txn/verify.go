package txn

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Verify answers AddPartitionsToTxn's VerifyOnly form (KIP-890): nil if tp
// is in the ongoing transaction of id at pid/epoch, CONCURRENT_TRANSACTIONS
// while a commit or abort is being completed, INVALID_TXN_STATE if tp is not
// enrolled, or the producer id/epoch error. Nothing is changed.
func (c *Coordinator) Verify(id string, pid int64, epoch int16, tp TP) *kerr.Error {
	e, err := c.producer(id, pid, epoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	switch {
	case e.Status == PrepareCommit || e.Status == PrepareAbort:
		return kerr.ConcurrentTransactions
	case e.Status != Ongoing || !slices.Contains(e.Partitions, tp):
		return kerr.InvalidTxnState
	}
	return nil
}
