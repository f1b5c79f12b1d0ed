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
//   - A transaction coordinated on another broker (a cluster): the offsets
//     are written to the group's __consumer_offsets partition as a batch of
//     the producer's transaction, after the coordinator verified (or, v5
//     under version 2, added) that partition in the transaction; they count
//     at the coordinator's COMMIT marker there (stageRemoteTxnOffsets).
//
// Version notes:
//   - v0-v6; v4 only adds TRANSACTION_ABORTABLE. v6 (Kafka 4.2) names
//     topics by id: an id that names no topic answers UNKNOWN_TOPIC_ID for
//     its partitions, which are not staged (the others are); the response
//     carries the ids. Offsets are staged by topic name.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/statelog"
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
		code = b.stageRemoteTxnOffsets(r, offsets)
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

// stageRemoteTxnOffsets handles a TxnOffsetCommit whose transaction is
// coordinated by another broker, as Kafka handles every one: the member is
// checked, the group's __consumer_offsets partition is verified in (v0-v4,
// where the client's AddOffsetsToTxn put it there) or added to (v5 under
// transaction version 2) the transaction by its coordinator, and the
// offsets are written to that partition in the producer's transaction, to
// count once the coordinator's COMMIT marker follows them (group/
// txn_offsets.go).
func (b *Broker) stageRemoteTxnOffsets(r *kmsg.TxnOffsetCommitRequest, offsets []txn.Offset) int16 {
	g := b.groups.Load()
	if g == nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code := b.checkTxnMember(r); code != 0 {
		return code
	}
	ot := b.meta.Image().Topics[OffsetsTopic]
	if ot == nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	tp := txn.TP{Topic: OffsetsTopic, Partition: int32(statelog.PartitionFor(r.Group, int(ot.Partitions)))}
	verify := !(r.Version >= 5 && b.opts.TransactionVersion >= 2)
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	codes, kerrv := b.askTxnCoordinator(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, []txn.TP{tp}, verify)
	if kerrv != nil {
		return kerrv.Code
	}
	switch code := codes[tp]; kerr.ErrorForCode(code) {
	case nil:
	case kerr.NotCoordinator, kerr.CoordinatorLoadInProgress:
		return kerr.CoordinatorNotAvailable.Code
	default:
		return code
	}
	commits := make([]group.Commit, 0, len(offsets))
	for _, o := range offsets {
		if o.Topic != "" {
			commits = append(commits, group.Commit{TP: group.TP{Topic: o.Topic, Partition: o.Partition}, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
		}
	}
	if err := g.StageTxnOffsets(r.Group, r.ProducerID, r.ProducerEpoch, commits); err != nil {
		b.log.Error("transactional offsets not written", "transactional_id", r.TransactionalID, "group", r.Group, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
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
