package kafka

// Behavior:
//
//   - Describes consumer-protocol (KIP-848) groups: state (Empty,
//     Assigning, Reconciling, Stable), group and assignment epochs, the
//     assignor in use, and each member's epoch, subscription, current and
//     target assignment. Unknown groups, and classic groups (described by
//     DescribeGroups), answer GROUP_ID_NOT_FOUND, as Kafka does.
//
// Version notes:
//   - v0-v1; v1 member type is 1 (consumer). Authorized operations are not
//     computed (no ACLs): the field keeps Kafka's "not requested" value.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleConsumerGroupDescribe(b *Broker, req *wire.Request, r *kmsg.ConsumerGroupDescribeRequest) (*kmsg.ConsumerGroupDescribeResponse, waitFunc[*kmsg.ConsumerGroupDescribeResponse], error) {
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	c := b.groups.Load()
	waits := make([]func(context.Context) (group.ConsumerDescription, bool), len(r.Groups))
	if c != nil {
		for i, g := range r.Groups {
			if g != "" {
				waits[i] = c.ConsumerDescribe(g)
			}
		}
	}
	return nil, func(ctx context.Context) *kmsg.ConsumerGroupDescribeResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		for i, gid := range r.Groups {
			sg := kmsg.NewConsumerGroupDescribeResponseGroup()
			sg.Group = gid
			switch {
			case c == nil:
				sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case gid == "":
				sg.ErrorCode = kerr.InvalidGroupID.Code
			case b.notCoordinator(gid) != 0:
				sg.ErrorCode = kerr.NotCoordinator.Code
			default:
				d, ok := waits[i](ctx)
				if !ok {
					sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
					break
				}
				fillConsumerGroup(&sg, d)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}, nil
}

func fillConsumerGroup(sg *kmsg.ConsumerGroupDescribeResponseGroup, d group.ConsumerDescription) {
	if d.Err != 0 {
		sg.ErrorCode, sg.ErrorMessage = d.Err, kmsg.StringPtr(d.ErrMsg)
		return
	}
	sg.State, sg.Epoch, sg.AssignmentEpoch, sg.AssignorName = d.State, d.Epoch, d.AssignEpoch, d.Assignor
	for _, m := range d.Members {
		sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		sm.MemberID, sm.InstanceID, sm.RackID, sm.MemberEpoch = m.MemberID, m.InstanceID, m.RackID, m.Epoch
		sm.ClientID, sm.ClientHost, sm.SubscribedTopicRegex = m.ClientID, m.ClientHost, m.Regex
		sm.SubscribedTopics = append([]string{}, m.Subscribed...)
		sm.Assignment.TopicPartitions = describeAssignment(m.Assignment)
		sm.TargetAssignment.TopicPartitions = describeAssignment(m.Target)
		sm.MemberType = 1
		sg.Members = append(sg.Members, sm)
	}
}

func describeAssignment(ts []group.TopicAssignment) []kmsg.AssignmentTopicPartition {
	out := []kmsg.AssignmentTopicPartition{}
	for _, t := range ts {
		at := kmsg.AssignmentTopicPartition{TopicID: t.ID, Topic: t.Topic, Partitions: t.Partitions}
		out = append(out, at)
	}
	return out
}
