package kafka

// Behavior:
//
//   - This broker coordinates every group (internal/group). The request is
//     posted to the group's goroutine on the connection's reader, so one
//     connection's group requests are seen in order; the answer is awaited
//     in the deferred reply, at most the rebalance timeout (the group
//     completes the join by then) plus a margin.
//   - The first rebalance of an Empty group waits
//     group.initial.rebalance.delay.ms (3 s; Kafka's InitialDelayedJoin)
//     for more members, extended by as much for each member that joins
//     meanwhile, at most max(delay, largest rebalance timeout) in total;
//     every join of that window is answered together, as generation 1.
//   - v4+ first join without a member id: MEMBER_ID_REQUIRED with an
//     assigned id (KIP-394); static members (group.instance.id, v5+) skip it
//     and replace a previous member with the same instance id (KIP-345).
//   - A client that disconnects while waiting gets no answer; a shutting
//     down broker answers COORDINATOR_NOT_AVAILABLE.
//
// Version notes:
//   - v2 is the minimum (KIP-896). v0 had no rebalance timeout (the session
//     timeout stands in, as in Kafka). v9 SkipAssignment is set for a static
//     leader that rejoins a stable group.

import (
	"context"
	"time"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SetGroups installs the group coordinator (nil: group APIs answer
// COORDINATOR_NOT_AVAILABLE).
func (b *Broker) SetGroups(c *group.Coordinator) {
	b.groups.Store(c)
	b.applyGroupSettings() // dynamic group settings survive restarts
}

// groupReplyTimeout bounds waits for answers that need no rebalance.
const groupReplyTimeout = 30 * time.Second

func ms(n int32) time.Duration { return time.Duration(n) * time.Millisecond }

func handleJoinGroup(b *Broker, req *wire.Request, r *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, waitFunc[*kmsg.JoinGroupResponse], error) {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = r.MemberID
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	jr := &group.JoinRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, ClientID: req.ClientID,
		ClientHost:     clientHost(req),
		SessionTimeout: ms(r.SessionTimeoutMillis), RebalanceTimeout: ms(r.RebalanceTimeoutMillis),
		ProtocolType: r.ProtocolType, RequireKnownMemberID: req.Version >= 4,
	}
	if req.Version == 0 || jr.RebalanceTimeout <= 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range r.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wait := c.Join(jr)
	return nil, func(ctx context.Context) *kmsg.JoinGroupResponse {
		// A new group's first join may wait the initial rebalance delay
		// even when it is longer than the rebalance timeout.
		ctx, cancel := context.WithTimeout(ctx, max(jr.RebalanceTimeout, c.InitialRebalanceDelay())+groupReplyTimeout)
		defer cancel()
		res, ok := wait(ctx)
		if !ok {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ErrorCode, resp.Generation, resp.MemberID = res.Err, res.Generation, res.MemberID
		resp.ProtocolType, resp.Protocol = kmsg.StringPtr(res.ProtocolType), kmsg.StringPtr(res.Protocol)
		resp.LeaderID, resp.SkipAssignment = res.Leader, res.SkipAssignment
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}, nil
}
