package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestCheckTxnCommit: KIP-447 membership checks for TxnOffsetCommit.
func TestCheckTxnCommit(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	want(t, "unchecked, unknown group", code(t, c.CheckTxnCommit("nope", MemberRef{}, -1)), nil)
	want(t, "member of unknown group", code(t, c.CheckTxnCommit("nope", MemberRef{MemberID: "m"}, 1)), kerr.UnknownMemberID)
	want(t, "generation without member, unknown group", code(t, c.CheckTxnCommit("nope", MemberRef{}, 1)), kerr.IllegalGeneration)
	want(t, "empty group id", code(t, c.CheckTxnCommit("", MemberRef{}, -1)), kerr.InvalidGroupID)

	a := newMember(t, c, "g")
	r := mustJoin(t, c, joinReq("g", a))
	// A rebalance in progress is no error for transactional commits.
	want(t, "member while completing", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: a}, r.Generation)), nil)
	c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: r.Generation})(ctx(t))
	want(t, "member", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: a}, r.Generation)), nil)
	want(t, "old generation", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: a}, r.Generation-1)), kerr.IllegalGeneration)
	want(t, "unknown member", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: "x"}, r.Generation)), kerr.UnknownMemberID)
	want(t, "unchecked, live group", code(t, c.CheckTxnCommit("g", MemberRef{}, -1)), nil)

	// A second member joins: the first one's generation is now stale.
	b := newMember(t, c, "g")
	ch := c.Join(joinReq("g", b))
	r2 := mustJoin(t, c, joinReq("g", a))
	if _, ok := ch(ctx(t)); !ok {
		t.Fatal("second join timed out")
	}
	want(t, "generation before the rebalance", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: a}, r.Generation)), kerr.IllegalGeneration)
	want(t, "new generation", code(t, c.CheckTxnCommit("g", MemberRef{MemberID: b}, r2.Generation)), nil)

	// KIP-848: the generation is the member epoch, which must be current.
	view := fakeTopics{"t": 4}
	m := &cmem{t: t, c: c, view: view, group: "cg", id: "m1"}
	m.mustHB(false)
	want(t, "848 member", code(t, c.CheckTxnCommit("cg", MemberRef{MemberID: m.id}, m.epoch)), nil)
	want(t, "848 old epoch", code(t, c.CheckTxnCommit("cg", MemberRef{MemberID: m.id}, m.epoch-1)), kerr.IllegalGeneration)
	want(t, "848 unknown member", code(t, c.CheckTxnCommit("cg", MemberRef{MemberID: "zz"}, m.epoch)), kerr.UnknownMemberID)
}
