package kafka

// Behavior:
//
//   - Enrols a consumer group in the producer's transaction (starting it
//     if none is ongoing), so TxnOffsetCommit may stage the group's offsets.
//     Producer checks as in AddPartitionsToTxn. A group coordinated on
//     another broker enrols its __consumer_offsets partition instead, as
//     Kafka does: that broker writes the offsets there in the transaction
//     and the marker makes them count (group/txn_offsets.go).
//
// Version notes:
//   - v0-v4; v4 only adds TRANSACTION_ABORTABLE, which this broker never
//     answers.

import (
	"github.com/chronik-stream/chronik/internal/txn"
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
		// The group's coordinator is another broker: as in Kafka, the
		// group's __consumer_offsets partition joins the transaction, so
		// its marker reaches the offsets TxnOffsetCommit writes there.
		resp.ErrorCode = errCode(c.AddPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, []txn.TP{b.offsetsPartition(r.Group)}))
	default:
		resp.ErrorCode = errCode(c.AddGroup(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group))
	}
	return resp, nil
}
