package group

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type fakeTopics map[string]int32

func (f fakeTopics) id(name string) [16]byte {
	var id [16]byte
	copy(id[:], name)
	return id
}

func (f fakeTopics) Topic(name string) (TopicMeta, bool) {
	n, ok := f[name]
	return TopicMeta{Name: name, ID: f.id(name), Partitions: n}, ok
}

func (f fakeTopics) TopicByID(id [16]byte) (TopicMeta, bool) {
	for name := range f {
		if f.id(name) == id {
			return f.Topic(name)
		}
	}
	return TopicMeta{}, false
}

func (f fakeTopics) Names() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	return out
}

// cmem simulates one KIP-848 member.
type cmem struct {
	t     *testing.T
	c     *Coordinator
	view  fakeTopics
	group string
	id    string
	epoch int32
	owned []int32 // partitions of topic "t"
}

func (m *cmem) hb(owned bool) ConsumerHeartbeatResult {
	m.t.Helper()
	req := &ConsumerHeartbeat{Group: m.group, MemberID: m.id, Epoch: m.epoch, RebalanceTimeout: -1, Topics: m.view}
	if m.epoch == 0 {
		req.Subscribed, req.RebalanceTimeout, req.Owned = []string{"t"}, 5*time.Second, []OwnedTopic{}
	} else if owned {
		req.Owned = []OwnedTopic{{ID: m.view.id("t"), Partitions: m.owned}}
	}
	res, ok := m.c.ConsumerHeartbeat(req)(ctx(m.t))
	if !ok {
		m.t.Fatal("no answer")
	}
	if res.Err == 0 {
		m.epoch = res.Epoch
		if res.HasAssign {
			m.owned = nil
			for _, ta := range res.Assignment {
				m.owned = append(m.owned, ta.Partitions...)
			}
			sort.Slice(m.owned, func(i, j int) bool { return m.owned[i] < m.owned[j] })
		}
	}
	return res
}

func (m *cmem) mustHB(owned bool) {
	m.t.Helper()
	if res := m.hb(owned); res.Err != 0 {
		m.t.Fatalf("%s heartbeat: %v", m.id, kerr.ErrorForCode(res.Err))
	}
}

func TestConsumerReconciliation(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	view := fakeTopics{"t": 6}
	m1 := &cmem{t: t, c: c, view: view, group: "g", id: "m1"}
	m2 := &cmem{t: t, c: c, view: view, group: "g", id: "m2"}

	m1.mustHB(true)
	if m1.epoch != 1 || len(m1.owned) != 6 {
		t.Fatalf("m1 epoch %d owns %v; want epoch 1 and all 6", m1.epoch, m1.owned)
	}
	m2.mustHB(true)
	if m2.epoch != 2 || len(m2.owned) != 0 {
		t.Fatalf("m2 epoch %d owns %v; want epoch 2 and nothing while m1 still owns all", m2.epoch, m2.owned)
	}
	// m1 is told to revoke half, staying at epoch 1 until it has.
	prev := append([]int32(nil), m1.owned...)
	res := m1.hb(true)
	if res.Err != 0 || m1.epoch != 1 || len(m1.owned) != 3 {
		t.Fatalf("m1 after rebalance: err %d epoch %d owns %v", res.Err, m1.epoch, m1.owned)
	}
	// Before m1 confirms, m2 gets nothing: no partition has two owners.
	m2.mustHB(true)
	if len(m2.owned) != 0 {
		t.Fatalf("m2 got %v before m1 revoked them (m1 had %v)", m2.owned, prev)
	}
	// A keepalive (owned unchanged) does not count as revoked.
	m1.mustHB(false)
	m2.mustHB(true)
	if len(m2.owned) != 0 {
		t.Fatalf("m2 got %v after a keepalive", m2.owned)
	}
	m1.mustHB(true) // reports only its 3: revocation done
	if m1.epoch != 2 {
		t.Fatalf("m1 epoch %d after revoking, want 2", m1.epoch)
	}
	m2.mustHB(true)
	if len(m2.owned) != 3 {
		t.Fatalf("m2 owns %v, want the 3 m1 released", m2.owned)
	}
	for _, p := range m2.owned {
		for _, q := range m1.owned {
			if p == q {
				t.Fatalf("partition %d owned by both", p)
			}
		}
	}
	d, _ := c.ConsumerDescribe("g")(ctx(t))
	if d.Err != 0 || d.State != "Stable" || d.Epoch != 2 || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}

	// Errors.
	bad := *m1
	bad.epoch = 7
	want(t, "future epoch", bad.hb(true).Err, kerr.FencedMemberEpoch)
	stranger := &cmem{t: t, c: c, view: view, group: "g", id: "x", epoch: 2}
	want(t, "unknown member", stranger.hb(true).Err, kerr.UnknownMemberID)
	want(t, "commit stale epoch", code(t, c.CommitOffsets("g", MemberRef{MemberID: "m1"}, 9, []Commit{{TP: TP{"t", m1.owned[0]}}})), kerr.StaleMemberEpoch)
	want(t, "commit unknown member", code(t, c.CommitOffsets("g", MemberRef{MemberID: "x"}, 2, []Commit{{TP: TP{"t", 0}}})), kerr.UnknownMemberID)
	want(t, "commit ok", code(t, c.CommitOffsets("g", MemberRef{MemberID: "m1"}, 2, []Commit{{TP: TP{"t", m1.owned[0]}, Offset: 5}})), nil)
	want(t, "standalone commit into live group", code(t, c.CommitOffsets("g", MemberRef{}, -1, []Commit{{TP: TP{"t", 0}}})), kerr.UnknownMemberID)
	jr, _ := c.Join(joinReq("g", ""))(ctx(t))
	want(t, "classic join", jr.Err, kerr.InconsistentGroupProtocol)
	if ls := c.List(); len(ls) != 1 || ls[0].Type != "consumer" || ls[0].State != "Stable" {
		t.Fatalf("list: %+v", ls)
	}

	// m2 leaves: m1 gets everything after the group epoch bump.
	m2.epoch = -1
	if res := m2.hb(false); res.Err != 0 || res.Epoch != -1 {
		t.Fatalf("leave: %+v", res)
	}
	m1.mustHB(true)
	m1.mustHB(true)
	if len(m1.owned) != 6 || m1.epoch != 3 {
		t.Fatalf("m1 after m2 left: epoch %d owns %v", m1.epoch, m1.owned)
	}
}

func TestConsumerSessionExpiryAndTopicGrowth(t *testing.T) {
	c := openTest(t, t.TempDir(), func(o *Options) { o.ConsumerSessionTimeout = 100 * time.Millisecond })
	view := fakeTopics{"t": 2}
	m1 := &cmem{t: t, c: c, view: view, group: "g", id: "m1"}
	m2 := &cmem{t: t, c: c, view: view, group: "g", id: "m2"}
	m1.mustHB(true)
	m2.mustHB(true)
	m1.mustHB(true)
	m1.mustHB(true)
	m2.mustHB(true)
	if len(m1.owned) != 1 || len(m2.owned) != 1 {
		t.Fatalf("owned %v and %v", m1.owned, m2.owned)
	}
	// m2 goes silent; m1 keeps heartbeating and takes over.
	checkFor(t, 5*time.Second, func() error {
		m1.mustHB(true)
		if len(m1.owned) != 2 {
			return fmt.Errorf("m1 owns %v", m1.owned)
		}
		return nil
	})
	want(t, "expired member", m2.hb(true).Err, kerr.UnknownMemberID)
	// The topic grows: the next heartbeat sees a new assignment.
	grown := fakeTopics{"t": 4}
	m1.view = grown
	m1.mustHB(true)
	m1.mustHB(true)
	if len(m1.owned) != 4 {
		t.Fatalf("after growth m1 owns %v", m1.owned)
	}
}

func TestConsumerGroupVersusClassic(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	id := newMember(t, c, "classic")
	mustJoin(t, c, joinReq("classic", id))
	m := &cmem{t: t, c: c, view: fakeTopics{"t": 1}, group: "classic", id: "m"}
	want(t, "consumer heartbeat to classic group", m.hb(true).Err, kerr.GroupIDNotFound)
	d, _ := c.ConsumerDescribe("classic")(ctx(t))
	want(t, "describe classic", d.Err, kerr.GroupIDNotFound)
	m.group = "fresh"
	req := &ConsumerHeartbeat{Group: "fresh", MemberID: "", Epoch: 0, Subscribed: []string{"t"}, Topics: m.view}
	res, _ := c.ConsumerHeartbeat(req)(ctx(t))
	want(t, "v1 join without member id", res.Err, kerr.InvalidRequest)
	bad := "sticky"
	req = &ConsumerHeartbeat{Group: "fresh", MemberID: "m", Subscribed: []string{"t"}, Assignor: &bad, Topics: m.view}
	res, _ = c.ConsumerHeartbeat(req)(ctx(t))
	want(t, "unknown assignor", res.Err, kerr.UnsupportedAssignor)
}

func TestConsumerStaticMemberAndRevokeTimeout(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	view := fakeTopics{"t": 4}
	inst := "i1"
	join := func(id string, rebalance time.Duration) ConsumerHeartbeatResult {
		req := &ConsumerHeartbeat{Group: "g", MemberID: id, InstanceID: &inst, Subscribed: []string{"t"},
			RebalanceTimeout: rebalance, Owned: []OwnedTopic{}, Topics: view}
		res, _ := c.ConsumerHeartbeat(req)(ctx(t))
		return res
	}
	first := join("a", 50*time.Millisecond)
	if first.Err != 0 || first.Epoch != 1 || len(first.Assignment) != 1 || len(first.Assignment[0].Partitions) != 4 {
		t.Fatalf("static join: %+v", first)
	}
	want(t, "same instance, other member, while live", join("b", time.Second).Err, kerr.UnreleasedInstanceID)
	leave := &ConsumerHeartbeat{Group: "g", MemberID: "a", Epoch: -2, InstanceID: &inst, RebalanceTimeout: -1, Topics: view}
	if res, _ := c.ConsumerHeartbeat(leave)(ctx(t)); res.Err != 0 || res.Epoch != -2 {
		t.Fatalf("temporary leave: %+v", res)
	}
	again := join("b", 50*time.Millisecond)
	if again.Err != 0 || again.Epoch != 1 || len(again.Assignment) != 1 || len(again.Assignment[0].Partitions) != 4 {
		t.Fatalf("static rejoin keeps epoch and assignment: %+v", again)
	}
	// A second member joins; "b" never acknowledges the revocation and is
	// removed after its rebalance timeout, so m2 gets everything.
	m2 := &cmem{t: t, c: c, view: view, group: "g", id: "m2"}
	m2.mustHB(true)
	hb := &ConsumerHeartbeat{Group: "g", MemberID: "b", Epoch: 1, RebalanceTimeout: -1, Topics: view}
	if res, _ := c.ConsumerHeartbeat(hb)(ctx(t)); res.Err != 0 || !res.HasAssign || len(res.Assignment[0].Partitions) != 2 {
		t.Fatalf("revocation request: %+v", res)
	}
	checkFor(t, 5*time.Second, func() error {
		m2.mustHB(true)
		if len(m2.owned) != 4 {
			return fmt.Errorf("m2 owns %v", m2.owned)
		}
		return nil
	})
}

func TestConsumerRegexSubscription(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	view := fakeTopics{"orders-eu": 2, "orders-us": 1, "other": 3}
	re := "orders-.*"
	req := &ConsumerHeartbeat{Group: "g", MemberID: "m", Regex: &re, RebalanceTimeout: time.Second, Owned: []OwnedTopic{}, Topics: view}
	res, _ := c.ConsumerHeartbeat(req)(ctx(t))
	if res.Err != 0 || len(res.Assignment) != 2 || res.Assignment[0].Topic != "orders-eu" || len(res.Assignment[0].Partitions) != 2 {
		t.Fatalf("regex join: %+v", res)
	}
	bad := "orders-("
	req = &ConsumerHeartbeat{Group: "g", MemberID: "m2", Regex: &bad, RebalanceTimeout: time.Second, Topics: view}
	res, _ = c.ConsumerHeartbeat(req)(ctx(t))
	want(t, "bad regex", res.Err, kerr.InvalidRegularExpression)
	// A topic created later that matches joins the assignment.
	grown := fakeTopics{"orders-eu": 2, "orders-us": 1, "other": 3, "orders-ap": 1}
	req = &ConsumerHeartbeat{Group: "g", MemberID: "m", Epoch: 1, RebalanceTimeout: -1, Topics: grown}
	res, _ = c.ConsumerHeartbeat(req)(ctx(t))
	if res.Err != 0 || res.Epoch != 2 || len(res.Assignment) != 3 {
		t.Fatalf("after a matching topic appeared: %+v", res)
	}
}
