package kafka

// Behavior:
//
//   - Partitions of unknown topics, or beyond a topic's count, answer
//     UNKNOWN_TOPIC_OR_PARTITION; metadata longer than
//     offset.metadata.max.bytes (4096) OFFSET_METADATA_TOO_LARGE. Those are
//     not written; the rest are validated against the group (member,
//     generation: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//     REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, whose code then applies to
//     every partition) and made durable (fsynced in the offsets log) before
//     the answer.
//   - Standalone commits (generation -1, empty member id, as kcat and admin
//     tools send) are accepted for groups without members, creating them.
//
// Version notes:
//   - v2 is the minimum (KIP-896); v2-v4 retention time is ignored
//     (offsets.retention.minutes applies); v6 leader epochs are stored; v7
//     instance id. v10 (Kafka 4.2) names topics by id: an id that names no
//     topic answers UNKNOWN_TOPIC_ID for its partitions; the response
//     carries the ids. Offsets stay keyed by topic name (the id is resolved
//     when the request arrives), so a commit by id and a fetch by name see
//     the same offset.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetsTopicIDVersion is the OffsetCommit and OffsetFetch version that
// names topics by id (TxnOffsetCommit's is txnOffsetsTopicIDVersion).
const offsetsTopicIDVersion = 10

func handleOffsetCommit(b *Broker, req *wire.Request, r *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, waitFunc[*kmsg.OffsetCommitResponse], error) {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	c := b.groups.Load()
	notCoord := b.notCoordinator(r.Group)
	var commits []group.Commit
	var pending []*int16 // codes of the partitions in commits
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(r.Topics))
	for ti, rt := range r.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, known := rt.Topic, true
		if req.Version >= offsetsTopicIDVersion {
			name, known = b.topicName(rt.TopicID)
		}
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case c == nil:
				sp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case notCoord != 0:
				sp.ErrorCode = notCoord
			case !known:
				sp.ErrorCode = kerr.UnknownTopicID.Code
			case b.partition(name, rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > group.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				cm := group.Commit{TP: group.TP{Topic: name, Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: -1}
				if req.Version >= 6 {
					cm.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					cm.Metadata = *rp.Metadata
				}
				commits = append(commits, cm)
				pending = append(pending, &sp.ErrorCode)
			}
		}
	}
	if len(commits) == 0 {
		return resp, nil, nil
	}
	wait := c.CommitOffsets(r.Group, group.MemberRef{MemberID: r.MemberID, InstanceID: r.InstanceID}, r.Generation, commits)
	return nil, func(ctx context.Context) *kmsg.OffsetCommitResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		code, ok := wait(ctx)
		if !ok {
			code = kerr.CoordinatorNotAvailable.Code
		}
		for _, p := range pending {
			*p = code
		}
		return resp
	}, nil
}
