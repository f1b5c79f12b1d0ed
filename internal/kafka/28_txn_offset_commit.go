package kafka

// Behavior:
//
//   - Stages a consumer group's offsets in the producer's transaction
//     (the group must have been added with AddOffsetsToTxn, else
//     INVALID_TXN_STATE). They become visible to OffsetFetch when the
//     transaction commits and are dropped when it aborts.
//   - v3+ (KIP-447) carries the consumer's member id, generation and
//     instance id; when given they must match the group (UNKNOWN_MEMBER_ID,
//     ILLEGAL_GENERATION, FENCED_INSTANCE_ID for every partition), so a
//     consumer fenced by a rebalance cannot commit in a transaction. For
//     KIP-848 groups the generation is the member epoch.
//
//   - v5+ under transaction version 2 (KIP-890 part 2) enrols the group in
//     the transaction itself: AddOffsetsToTxn is not needed first.
//
// Version notes:
//   - v0-v6; v4 only adds TRANSACTION_ABORTABLE. v6 (Kafka 4.2) names
//     topics by id: an id that names no topic answers UNKNOWN_TOPIC_ID for
//     its partitions, which are not staged (the others are); the response
//     carries the ids. Offsets are staged by topic name.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnOffsetsTopicIDVersion is the TxnOffsetCommit version that names topics
// by id.
const txnOffsetsTopicIDVersion = 6

func handleTxnOffsetCommit(b *Broker, r *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitResponse, error) {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	c := b.txns.Load()
	var offsets []txn.Offset
	names := make([]string, len(r.Topics))
	for i, rt := range r.Topics {
		names[i] = rt.Topic
		if r.Version >= txnOffsetsTopicIDVersion {
			if name, ok := b.topicName(rt.TopicID); ok {
				names[i] = name
			} else {
				names[i] = "" // UNKNOWN_TOPIC_ID
				continue
			}
		}
		for _, rp := range rt.Partitions {
			o := txn.Offset{TP: txn.TP{Topic: names[i], Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch}
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
	case b.notCoordinator(r.Group) != 0:
		code = kerr.NotCoordinator.Code
	case b.notTxnCoordinator(r.TransactionalID) != 0:
		code = b.txnOffsetsElsewhere(r.TransactionalID, r.Group)
	default:
		code = b.checkTxnMember(r)
		if code == 0 && r.Version >= 5 && b.opts.TransactionVersion >= 2 {
			// Transaction version 2: the commit enrols its group.
			code = errCode(c.AddGroup(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group))
		}
		if code == 0 {
			code = errCode(c.CommitOffsets(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, offsets))
		}
	}
	for i, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			if names[i] == "" {
				sp.ErrorCode = kerr.UnknownTopicID.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// checkTxnMember validates a v3+ TxnOffsetCommit's member and generation
// with the group coordinator (v0-v2 carry none: nothing to check).
func (b *Broker) checkTxnMember(r *kmsg.TxnOffsetCommitRequest) int16 {
	g := b.groups.Load()
	if r.Version < 3 || g == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupReplyTimeout)
	defer cancel()
	code, ok := g.CheckTxnCommit(r.Group, group.MemberRef{MemberID: r.MemberID, InstanceID: r.InstanceID}, r.Generation)(ctx)
	if !ok {
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}
