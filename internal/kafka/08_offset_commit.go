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
//     instance id. v10 (topic ids) is not served.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetCommit(b *Broker, _ context.Context, req *wire.Request) (wire.Reply, error) {
	r, ok := req.Body.(*kmsg.OffsetCommitRequest)
	if !ok {
		return wire.Reply{}, errWrongType
	}
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.SetVersion(req.Version)
	c := b.groups.Load()
	var commits []group.Commit
	var pending []*int16 // codes of the partitions in commits
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(r.Topics))
	for ti, rt := range r.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case c == nil:
				sp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case b.partition(rt.Topic, rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > group.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				cm := group.Commit{TP: group.TP{Topic: rt.Topic, Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: -1}
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
		return wire.Reply{Resp: resp}, nil
	}
	wait := c.CommitOffsets(r.Group, group.MemberRef{MemberID: r.MemberID, InstanceID: r.InstanceID}, r.Generation, commits)
	return wire.Reply{Later: func() kmsg.Response {
		ctx, cancel := b.groupWait(req, groupReplyTimeout)
		defer cancel()
		code, ok := wait(ctx)
		if !ok {
			if clientGone(req) {
				return nil
			}
			code = kerr.CoordinatorNotAvailable.Code
		}
		for _, p := range pending {
			*p = code
		}
		return resp
	}}, nil
}
