package kafka

// Behavior:
//
//   - Stages a consumer group's offsets in the producer's transaction
//     (the group must have been added with AddOffsetsToTxn, else
//     INVALID_TXN_STATE). They become visible to OffsetFetch when the
//     transaction commits and are dropped when it aborts. The group's
//     generation and member (v3+) are not checked.
//
// Version notes:
//   - v0-v4; v4 only adds TRANSACTION_ABORTABLE. v5+ (KIP-890 part 2) and
//     v6 topic ids are not served.

import (
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleTxnOffsetCommit(b *Broker, r *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitResponse, error) {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	c := b.txns.Load()
	var offsets []txn.Offset
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			o := txn.Offset{TP: txn.TP{Topic: rt.Topic, Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			offsets = append(offsets, o)
		}
	}
	var code int16
	switch {
	case c == nil:
		code = kerr.CoordinatorNotAvailable.Code
	case r.Group == "":
		code = kerr.InvalidGroupID.Code
	default:
		code = errCode(c.CommitOffsets(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, offsets))
	}
	for _, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
