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

func handleHeartbeat(b *Broker, _ context.Context, req *wire.Request) (wire.Reply, error) {
	r, ok := req.Body.(*kmsg.HeartbeatRequest)
	if !ok {
		return wire.Reply{}, errWrongType
	}
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.SetVersion(req.Version)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Reply{Resp: resp}, nil
	}
	wait := c.Heartbeat(r.Group, group.MemberRef{MemberID: r.MemberID, InstanceID: r.InstanceID}, r.Generation)
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
		resp.ErrorCode = code
		return resp
	}}, nil
}
