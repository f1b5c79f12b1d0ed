package kafka

// Behavior:
//
//   - Every group this broker coordinates, including groups that only hold
//     committed offsets (state Empty, protocol type "").
//   - v4+ state filter (case-insensitive, as Kafka); v5 type filter:
//     "classic" or "consumer" (KIP-848 groups, whose states are Empty,
//     Assigning, Reconciling, Stable).
//
// Version notes:
//   - v0-v5.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(b *Broker, r *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, l := range c.List() {
		if !match(r.StatesFilter, l.State) || !match(r.TypesFilter, l.Type) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState, sg.GroupType = l.Group, l.ProtocolType, l.State, l.Type
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
