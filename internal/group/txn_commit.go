package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// CheckTxnCommit validates a TxnOffsetCommit's membership (KIP-447, v3+) as
// Kafka does: a member id or generation that is given must match the group
// (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID), so a consumer
// that lost its partitions in a rebalance cannot commit their offsets in a
// transaction; member "" with generation -1 (v0-v2 clients) is not checked.
// Unlike OffsetCommit a rebalance in progress is no error: the offsets only
// become visible when the transaction commits. For KIP-848 groups the
// generation is the member epoch and must equal the member's current one.
func (c *Coordinator) CheckTxnCommit(gid string, ref MemberRef, generation int32) func(ctx context.Context) (int16, bool) {
	if gid == "" {
		return ready(kerr.InvalidGroupID.Code)
	}
	unchecked := ref.MemberID == "" && generation < 0
	missing := kerr.UnknownMemberID.Code
	switch {
	case unchecked:
		missing = 0
	case ref.MemberID == "":
		missing = kerr.IllegalGeneration.Code
	}
	return ask(c, gid, false, missing, func(g *group) int16 {
		if unchecked {
			return 0
		}
		if g.state == stateDead {
			return kerr.CoordinatorNotAvailable.Code
		}
		if g.cg != nil {
			m := g.cg.members[ref.MemberID]
			switch {
			case m == nil:
				return kerr.UnknownMemberID.Code
			case ref.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *ref.InstanceID):
				return kerr.FencedInstanceID.Code
			case generation != m.epoch:
				return kerr.IllegalGeneration.Code
			}
			return 0
		}
		if g.fenced(ref.InstanceID, ref.MemberID) {
			return kerr.FencedInstanceID.Code
		}
		if ref.MemberID != "" && g.members[ref.MemberID] == nil {
			return kerr.UnknownMemberID.Code
		}
		if generation >= 0 && generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		return 0
	})
}
