package kafka

// Behavior:
//
//   - State, protocol type, members (client id, instance id). The chosen
//     protocol and each member's metadata and assignment are shown while
//     Stable, as Kafka does. Client host is not tracked (empty).
//   - An unknown group is state Dead with no error before v6 and
//     GROUP_ID_NOT_FOUND from v6, as Kafka 4.0 answers.
//
// Version notes:
//   - v0-v6; authorized operations (v3+) are not computed (no ACLs): the
//     field keeps Kafka's "not requested" value.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(b *Broker, req *wire.Request, r *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, waitFunc[*kmsg.DescribeGroupsResponse], error) {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c := b.groups.Load()
	waits := make([]func(context.Context) (group.Description, bool), len(r.Groups))
	if c != nil {
		for i, g := range r.Groups {
			waits[i] = c.Describe(g)
		}
	}
	return nil, func(ctx context.Context) *kmsg.DescribeGroupsResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		for i, gid := range r.Groups {
			sg := kmsg.NewDescribeGroupsResponseGroup()
			sg.Group = gid
			if c == nil {
				sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
				resp.Groups = append(resp.Groups, sg)
				continue
			}
			if sg.ErrorCode = b.notCoordinator(gid); sg.ErrorCode != 0 {
				resp.Groups = append(resp.Groups, sg)
				continue
			}
			d, ok := waits[i](ctx)
			switch {
			case !ok:
				sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case d.State == "":
				sg.State = "Dead"
				if req.Version >= 6 {
					sg.ErrorCode = kerr.GroupIDNotFound.Code
					sg.ErrorMessage = kmsg.StringPtr("group " + gid + " not found")
				}
			default:
				sg.State, sg.ProtocolType, sg.Protocol = d.State, d.ProtocolType, d.Protocol
				for _, m := range d.Members {
					sm := kmsg.NewDescribeGroupsResponseGroupMember()
					sm.MemberID, sm.InstanceID, sm.ClientID, sm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
					sm.ProtocolMetadata, sm.MemberAssignment = nonNil(m.Metadata), nonNil(m.Assignment)
					sg.Members = append(sg.Members, sm)
				}
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
