package kafka

// Behavior:
//
//   - Keeps a member's session alive. NONE while Stable or
//     CompletingRebalance, REBALANCE_IN_PROGRESS while PreparingRebalance
//     (the member must rejoin), UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//     FENCED_INSTANCE_ID as Kafka answers them.
//
// Version notes:
//   - v0-v4; v3 instance id.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(b *Broker, req *wire.Request, r *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, waitFunc[*kmsg.HeartbeatResponse], error) {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	wait := c.Heartbeat(r.Group, group.MemberRef{MemberID: r.MemberID, InstanceID: r.InstanceID}, r.Generation)
	return nil, func(ctx context.Context) *kmsg.HeartbeatResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		code, ok := wait(ctx)
		if !ok {
			code = kerr.CoordinatorNotAvailable.Code
		}
		resp.ErrorCode = code
		return resp
	}, nil
}
