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
//   - v5+ (transaction version 2, KIP-890 part 2): the epoch is bumped with
//     every EndTxn and the markers carry the new one; the answer holds the
//     producer id and epoch to use next. A retry by the previous epoch of an
//     EndTxn that completed the same way answers them again; an abort with
//     nothing ongoing is legal and only bumps the epoch.
//
// Version notes:
//   - v0-v5; v5 is refused (UNSUPPORTED_VERSION) when the broker runs with
//     --transaction-version 1, which does not advertise the feature.

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
	if code := b.notTxnCoordinator(r.TransactionalID); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	if r.Version >= 5 {
		if b.opts.TransactionVersion < 2 {
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			return resp, nil
		}
		pid, epoch, err := c.EndV2(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = errCode(err), pid, epoch
		return resp, nil
	}
	resp.ErrorCode = errCode(c.End(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit))
	return resp, nil
}
