package kafka

// Behavior:
//
//   - Deletes groups without members, with their committed offsets
//     (tombstones in the offsets log, fsynced before the answer). A group
//     with members answers NON_EMPTY_GROUP, an unknown one
//     GROUP_ID_NOT_FOUND.
//
// Version notes:
//   - v0-v3 (v3 error messages).

import (
	"context"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(b *Broker, req *wire.Request, r *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, waitFunc[*kmsg.DeleteGroupsResponse], error) {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	c := b.groups.Load()
	waits := make([]func(context.Context) (int16, bool), len(r.Groups))
	if c != nil {
		for i, g := range r.Groups {
			if b.notCoordinator(g) == 0 {
				waits[i] = c.Delete(g)
			}
		}
	}
	return nil, func(ctx context.Context) *kmsg.DeleteGroupsResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		for i, gid := range r.Groups {
			sg := kmsg.NewDeleteGroupsResponseGroup()
			sg.Group = gid
			if c == nil {
				sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			} else if waits[i] == nil {
				sg.ErrorCode = kerr.NotCoordinator.Code
			} else if code, ok := waits[i](ctx); ok {
				sg.ErrorCode = code
			} else {
				sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
			if sg.ErrorCode != 0 && req.Version >= 3 {
				sg.ErrorMessage = kmsg.StringPtr(kerr.ErrorForCode(sg.ErrorCode).Error())
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}, nil
}
