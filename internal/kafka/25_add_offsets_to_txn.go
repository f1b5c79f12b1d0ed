package kafka

// Behavior:
//
//   - Enrols a consumer group in the producer's transaction (starting it
//     if none is ongoing), so TxnOffsetCommit may stage the group's offsets.
//     Producer checks as in AddPartitionsToTxn.
//
// Version notes:
//   - v0-v4; v4 only adds TRANSACTION_ABORTABLE, which this broker never
//     answers.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(b *Broker, r *kmsg.AddOffsetsToTxnRequest) (*kmsg.AddOffsetsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	c := b.txns.Load()
	switch {
	case c == nil:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case b.notTxnCoordinator(r.TransactionalID) != 0:
		resp.ErrorCode = kerr.NotCoordinator.Code
	case r.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case b.notCoordinator(r.Group) != 0:
		resp.ErrorCode = b.txnOffsetsElsewhere(r.TransactionalID, r.Group)
	default:
		resp.ErrorCode = errCode(c.AddGroup(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group))
	}
	return resp, nil
}
