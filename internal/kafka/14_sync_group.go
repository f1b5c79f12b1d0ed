package kafka

// Behavior:
//
//   - The leader's SyncGroup carries the assignment of every member; the
//     followers' SyncGroups wait (deferred reply) until it arrives, then each
//     member gets its own. In Stable, a SyncGroup answers the current
//     assignment at once.
//   - Errors as Kafka: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//     FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS (a new rebalance started),
//     INCONSISTENT_GROUP_PROTOCOL (v5 protocol type/name mismatch).
//
// Version notes:
//   - v0-v5; v3 instance id, v5 protocol type and name echoed.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(b *Broker, req *wire.Request, r *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, waitFunc[*kmsg.SyncGroupResponse], error) {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	sr := &group.SyncRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, Generation: r.Generation,
		ProtocolType: r.ProtocolType, Protocol: r.Protocol, Assignments: map[string][]byte{},
	}
	for _, a := range r.GroupAssignment {
		sr.Assignments[a.MemberID] = a.MemberAssignment
	}
	wait := c.Sync(sr)
	return nil, func(ctx context.Context) *kmsg.SyncGroupResponse {
		// The leader may take up to the rebalance timeout; the client
		// bounds its own wait the same way.
		ctx, cancel := context.WithTimeout(ctx, 10*groupReplyTimeout)
		defer cancel()
		res, ok := wait(ctx)
		if !ok {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ErrorCode = res.Err
		resp.ProtocolType, resp.Protocol = kmsg.StringPtr(res.ProtocolType), kmsg.StringPtr(res.Protocol)
		resp.MemberAssignment = res.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp
	}, nil
}
