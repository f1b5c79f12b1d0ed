package kafka

// Behavior:
//
//   - The consumer group protocol (KIP-848): the coordinator assigns
//     partitions (server-side assignors "uniform", the default, and
//     "range"); members reconcile incrementally through heartbeats. See
//     internal/group/consumer.go for the state machine and error codes.
//   - Subscriptions by topic names, or by a regex (RE2 syntax, matched
//     against whole topic names) from v1. Topics are resolved against the
//     broker's metadata on every heartbeat, so created or grown topics
//     trigger a new assignment at the next heartbeat.
//   - A group with classic members answers GROUP_ID_NOT_FOUND; an empty
//     classic group (e.g. only committed offsets) becomes a consumer group.
//
// Version notes:
//   - v0: an empty member id on join gets a coordinator-generated id.
//   - v1 (KIP-1082): the client generates the member id (empty is
//     INVALID_REQUEST); SubscribedTopicRegex.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupTopics returns the current metadata image as the group coordinator
// resolves topics (by name on heartbeats, by id when it restores consumer
// groups at start).
func (b *Broker) GroupTopics() group.TopicView { return imageTopics{b.meta.Image()} }

// imageTopics adapts a metadata image to group.TopicView.
type imageTopics struct{ im *metadata.Image }

func (v imageTopics) Topic(name string) (group.TopicMeta, bool) {
	t, ok := v.im.Topics[name]
	if !ok {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.Name, ID: t.ID, Partitions: t.Partitions}, true
}

func (v imageTopics) TopicByID(id [16]byte) (group.TopicMeta, bool) {
	t, ok := v.im.ByID[metadata.TopicID(id)]
	if !ok {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.Name, ID: t.ID, Partitions: t.Partitions}, true
}

func (v imageTopics) Names() []string {
	out := make([]string, 0, len(v.im.Topics))
	for n := range v.im.Topics {
		out = append(out, n)
	}
	return out
}

func handleConsumerGroupHeartbeat(b *Broker, req *wire.Request, r *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, waitFunc[*kmsg.ConsumerGroupHeartbeatResponse], error) {
	resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	hb := &group.ConsumerHeartbeat{
		Group: r.Group, MemberID: r.MemberID, Epoch: r.MemberEpoch, InstanceID: r.InstanceID, RackID: r.RackID,
		RebalanceTimeout: -1, Subscribed: r.SubscribedTopicNames, Regex: r.SubscribedTopicRegex,
		Assignor: r.ServerAssignor, ClientID: req.ClientID, ClientHost: clientHost(req), GenerateMemberID: req.Version == 0,
		Topics: imageTopics{b.meta.Image()},
	}
	if r.RebalanceTimeoutMillis >= 0 {
		hb.RebalanceTimeout = ms(r.RebalanceTimeoutMillis)
	}
	if r.Topics != nil {
		hb.Owned = make([]group.OwnedTopic, len(r.Topics))
		for i, t := range r.Topics {
			hb.Owned[i] = group.OwnedTopic{ID: t.TopicID, Partitions: t.Partitions}
		}
	}
	wait := c.ConsumerHeartbeat(hb)
	return nil, func(ctx context.Context) *kmsg.ConsumerGroupHeartbeatResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		res, ok := wait(ctx)
		if !ok {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ErrorCode, resp.MemberEpoch, resp.HeartbeatIntervalMillis = res.Err, res.Epoch, res.IntervalMs
		if res.ErrMsg != "" {
			resp.ErrorMessage = kmsg.StringPtr(res.ErrMsg)
		}
		if res.MemberID != "" {
			resp.MemberID = kmsg.StringPtr(res.MemberID)
		}
		if res.Err == 0 && res.HasAssign {
			a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}}
			for _, t := range res.Assignment {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID, at.Partitions = t.ID, t.Partitions
				a.Topics = append(a.Topics, at)
			}
			resp.Assignment = a
		}
		return resp
	}, nil
}
