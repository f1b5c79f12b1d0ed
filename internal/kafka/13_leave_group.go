package kafka

// Behavior:
//
//   - Removes members (a rebalance follows for the rest). Static members
//     are named by instance id (v3+); a member id that does not match the
//     instance's current one is FENCED_INSTANCE_ID, an unknown one
//     UNKNOWN_MEMBER_ID.
//
// Version notes:
//   - v0-v2 name one member by id (its error is the top-level code); v3+
//     batch members with per-member codes.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(b *Broker, req *wire.Request, r *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, waitFunc[*kmsg.LeaveGroupResponse], error) {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	var refs []group.MemberRef
	if req.Version < 3 {
		refs = []group.MemberRef{{MemberID: r.MemberID}}
	}
	for _, m := range r.Members {
		refs = append(refs, group.MemberRef{MemberID: m.MemberID, InstanceID: m.InstanceID})
	}
	wait := c.Leave(r.Group, refs)
	return nil, func(ctx context.Context) *kmsg.LeaveGroupResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		codes, ok := wait(ctx)
		if !ok {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		if req.Version < 3 {
			resp.ErrorCode = codes[0]
			return resp
		}
		for i, m := range r.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, codes[i]
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}, nil
}
