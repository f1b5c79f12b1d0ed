package kafka

// Behavior:
//
//   - Commits or aborts the producer's ongoing transaction: the coordinator
//     records PrepareCommit/PrepareAbort, writes a COMMIT or ABORT marker to
//     every enrolled partition and waits for them to be durable, makes the
//     staged group offsets visible (commit only), then records
//     CompleteCommit/CompleteAbort before answering. A retried EndTxn of a
//     transaction that already completed the same way answers success; with
//     nothing ongoing it answers INVALID_TXN_STATE; an old epoch
//     PRODUCER_FENCED.
//
// Version notes:
//   - v0-v4. v5 (KIP-890 part 2: the epoch bumps on every EndTxn) is not
//     served, and transaction.version is not advertised, so clients use the
//     v0-v4 protocol.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(b *Broker, r *kmsg.EndTxnRequest) (*kmsg.EndTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	c := b.txns.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ErrorCode = errCode(c.End(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit))
	return resp, nil
}
