package group

import (
	"fmt"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openCG opens a coordinator on dir that resolves topics with view.
func openCG(t *testing.T, dir string, view fakeTopics) *Coordinator {
	t.Helper()
	return openTest(t, dir, func(o *Options) { o.Topics = func() TopicView { return view } })
}

// settle heartbeats every member until the group is Stable and nobody's
// assignment changes.
func settle(t *testing.T, c *Coordinator, gid string, ms ...*cmem) ConsumerDescription {
	t.Helper()
	for range 20 {
		for _, m := range ms {
			m.mustHB(true)
		}
		d, _ := c.ConsumerDescribe(gid)(ctx(t))
		if d.State == "Stable" {
			return d
		}
	}
	t.Fatal("group did not settle")
	return ConsumerDescription{}
}

func sameMembers(t *testing.T, what string, got, want ConsumerDescription) {
	t.Helper()
	if got.Err != 0 || got.State != want.State || got.Epoch != want.Epoch || got.AssignEpoch != want.AssignEpoch || len(got.Members) != len(want.Members) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
	for i, m := range got.Members {
		w := want.Members[i]
		if m.MemberID != w.MemberID || m.Epoch != w.Epoch || m.ClientID != w.ClientID || fmt.Sprint(m.Assignment) != fmt.Sprint(w.Assignment) ||
			fmt.Sprint(m.Target) != fmt.Sprint(w.Target) || fmt.Sprint(m.Subscribed) != fmt.Sprint(w.Subscribed) {
			t.Fatalf("%s: member %+v, want %+v", what, m, w)
		}
	}
}

// TestConsumerGroupSurvivesRestart: a Stable KIP-848 group is restored with
// its epochs, members and assignments, after a clean restart and after a
// crash; its members' heartbeats carry on with no epoch bump and no
// assignment change; a member that left stays gone; an emptied group keeps
// its epoch; a deleted group stays deleted.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			dir := t.TempDir()
			view := fakeTopics{"t": 6}
			c := openCG(t, dir, view)
			ms := []*cmem{
				{t: t, c: c, view: view, group: "g", id: "m1"},
				{t: t, c: c, view: view, group: "g", id: "m2"},
				{t: t, c: c, view: view, group: "g", id: "m3"},
			}
			before := settle(t, c, "g", ms...)
			if before.Epoch != 3 || len(before.Members) != 3 {
				t.Fatalf("before restart: %+v", before)
			}
			if !crash {
				c.Close()
			}
			c2 := openCG(t, dir, view)
			after, _ := c2.ConsumerDescribe("g")(ctx(t))
			sameMembers(t, "after restart", after, before)
			if ls := c2.List(); len(ls) != 1 || ls[0].Type != "consumer" || ls[0].State != "Stable" {
				t.Fatalf("list: %+v", ls)
			}
			for _, m := range ms {
				m.c = c2
				epoch, owned := m.epoch, slices.Clone(m.owned)
				res := m.hb(true)
				if res.Err != 0 || res.Epoch != epoch || res.HasAssign || !slices.Equal(m.owned, owned) {
					t.Fatalf("%s heartbeat after restart: %+v (epoch was %d)", m.id, res, epoch)
				}
				m.mustHB(false) // a keepalive too
				want(t, "commit with the restored epoch", code(t, c2.CommitOffsets("g", MemberRef{MemberID: m.id}, m.epoch, []Commit{{TP: TP{"t", m.owned[0]}, Offset: 1}})), nil)
			}
			again, _ := c2.ConsumerDescribe("g")(ctx(t))
			sameMembers(t, "after heartbeats", again, before)

			// m3 leaves; m1 and m2 take its partitions. Restart: m3 stays gone.
			ms[2].epoch = -1
			if res := ms[2].hb(false); res.Err != 0 {
				t.Fatalf("leave: %+v", res)
			}
			left := settle(t, c2, "g", ms[0], ms[1])
			if left.Epoch != 4 || len(left.Members) != 2 {
				t.Fatalf("after m3 left: %+v", left)
			}
			if !crash {
				c2.Close()
			}
			c3 := openCG(t, dir, view)
			d3, _ := c3.ConsumerDescribe("g")(ctx(t))
			sameMembers(t, "after the second restart", d3, left)
			gone := &cmem{t: t, c: c3, view: view, group: "g", id: "m3", epoch: 3}
			want(t, "heartbeat of the member that left", gone.hb(true).Err, kerr.UnknownMemberID)

			// Everyone leaves: Empty with the epoch kept across a restart.
			for _, m := range ms[:2] {
				m.c, m.epoch = c3, -1
				if res := m.hb(false); res.Err != 0 {
					t.Fatalf("leave: %+v", res)
				}
			}
			if !crash {
				c3.Close()
			}
			c4 := openCG(t, dir, view)
			d4, _ := c4.ConsumerDescribe("g")(ctx(t))
			if d4.Err != 0 || d4.State != "Empty" || d4.Epoch != 6 || len(d4.Members) != 0 {
				t.Fatalf("emptied group after restart: %+v", d4)
			}
			m := &cmem{t: t, c: c4, view: view, group: "g", id: "m4"}
			m.mustHB(true)
			if m.epoch != 7 {
				t.Fatalf("first join after restart: epoch %d, want 7", m.epoch)
			}
			m.epoch = -1
			m.mustHB(false)
			want(t, "delete", code(t, c4.Delete("g")), nil)
			if !crash {
				c4.Close()
			}
			c5 := openCG(t, dir, view)
			if d, _ := c5.ConsumerDescribe("g")(ctx(t)); d.Err != kerr.GroupIDNotFound.Code {
				t.Fatalf("deleted group restored: %+v", d)
			}
			if ls := c5.List(); len(ls) != 0 {
				t.Fatalf("list after delete: %+v", ls)
			}
		})
	}
}

// TestConsumerGroupRestartMidReconciliation: a restart while a member is
// revoking keeps the revocation pending; the partitions go to the new owner
// only once released, so no partition ever has two owners.
func TestConsumerGroupRestartMidReconciliation(t *testing.T) {
	dir := t.TempDir()
	view := fakeTopics{"t": 4}
	c := openCG(t, dir, view)
	m1 := &cmem{t: t, c: c, view: view, group: "g", id: "m1"}
	m2 := &cmem{t: t, c: c, view: view, group: "g", id: "m2"}
	m1.mustHB(true)
	m2.mustHB(true)
	m1.mustHB(false) // keepalive: told to revoke two, not yet acknowledged
	if len(m1.owned) != 2 || m1.epoch != 1 {
		t.Fatalf("m1 owns %v at epoch %d", m1.owned, m1.epoch)
	}
	c2 := openCG(t, dir, view) // crash
	m1.c, m2.c = c2, c2
	d, _ := c2.ConsumerDescribe("g")(ctx(t))
	if d.State != "Reconciling" || d.Epoch != 2 {
		t.Fatalf("restored: %+v", d)
	}
	m2.mustHB(true)
	if len(m2.owned) != 0 || m2.epoch != 2 {
		t.Fatalf("m2 got %v at epoch %d before m1 released", m2.owned, m2.epoch)
	}
	// m1 still reports all four: the revocation stays pending.
	all := []int32{0, 1, 2, 3}
	m1.owned = all
	if res := m1.hb(true); res.Err != 0 || m1.epoch != 1 || len(m1.owned) != 2 {
		t.Fatalf("m1 after restart: %+v owns %v", res, m1.owned)
	}
	m1.mustHB(true) // releases
	if m1.epoch != 2 {
		t.Fatalf("m1 epoch %d after releasing", m1.epoch)
	}
	m2.mustHB(true)
	if len(m2.owned) != 2 {
		t.Fatalf("m2 owns %v", m2.owned)
	}
	for _, p := range m2.owned {
		if slices.Contains(m1.owned, p) {
			t.Fatalf("partition %d owned by both", p)
		}
	}
}

// TestConsumerGroupStaticMemberRestart: a static member that left
// temporarily (epoch -2) is restored as such, and its instance rejoining
// under a new member id takes its assignment over without a rebalance.
func TestConsumerGroupStaticMemberRestart(t *testing.T) {
	dir := t.TempDir()
	view := fakeTopics{"t": 2, "u": 1}
	c := openCG(t, dir, view)
	inst := "i1"
	req := &ConsumerHeartbeat{Group: "g", MemberID: "a", InstanceID: &inst, Subscribed: []string{"t"}, RebalanceTimeout: 1e9, Owned: []OwnedTopic{}, Topics: view}
	if res, _ := c.ConsumerHeartbeat(req)(ctx(t)); res.Err != 0 || res.Epoch != 1 {
		t.Fatalf("join: %+v", res)
	}
	// A new subscription: epoch 2.
	sub := &ConsumerHeartbeat{Group: "g", MemberID: "a", Epoch: 1, InstanceID: &inst, Subscribed: []string{"t", "u"}, RebalanceTimeout: -1, Topics: view}
	if res, _ := c.ConsumerHeartbeat(sub)(ctx(t)); res.Err != 0 || res.Epoch != 2 {
		t.Fatalf("subscribe: %+v", res)
	}
	leave := &ConsumerHeartbeat{Group: "g", MemberID: "a", Epoch: -2, InstanceID: &inst, RebalanceTimeout: -1, Topics: view}
	if res, _ := c.ConsumerHeartbeat(leave)(ctx(t)); res.Err != 0 {
		t.Fatalf("leave: %+v", res)
	}
	c.Close()
	c2 := openCG(t, dir, view)
	if d, _ := c2.ConsumerDescribe("g")(ctx(t)); len(d.Members) != 1 || d.Members[0].MemberID != "a" || d.Epoch != 2 {
		t.Fatalf("restored: %+v", d)
	}
	req.MemberID, req.Subscribed = "b", []string{"t", "u"}
	res, _ := c2.ConsumerHeartbeat(req)(ctx(t))
	if res.Err != 0 || res.Epoch != 2 || len(res.Assignment) != 2 || len(res.Assignment[0].Partitions) != 2 {
		t.Fatalf("static rejoin after restart: %+v", res)
	}
	c2.Close()
	c3 := openCG(t, dir, view)
	d, _ := c3.ConsumerDescribe("g")(ctx(t))
	if len(d.Members) != 1 || d.Members[0].MemberID != "b" || d.Epoch != 2 {
		t.Fatalf("after the replacement and a restart: %+v", d)
	}
}

// TestConsumerGroupTurnsClassicAfterRestart: an emptied consumer group that
// a classic member joins is tombstoned; after a restart it is a classic
// group.
func TestConsumerGroupTurnsClassicAfterRestart(t *testing.T) {
	dir := t.TempDir()
	view := fakeTopics{"t": 2}
	c := openCG(t, dir, view)
	m := &cmem{t: t, c: c, view: view, group: "g", id: "m"}
	m.mustHB(true)
	m.epoch = -1
	m.mustHB(false)
	stableGroup(t, c, "g")
	waitPersisted(t, c, "g")
	c.Close()
	c2 := openCG(t, dir, view)
	if d, _ := c2.Describe("g")(ctx(t)); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("classic group after restart: %+v", d)
	}
	if d, _ := c2.ConsumerDescribe("g")(ctx(t)); d.Err != kerr.GroupIDNotFound.Code {
		t.Fatalf("still a consumer group: %+v", d)
	}
}

// TestConsumerGroupRecordsInKafkaFormat: the records a Stable group leaves
// in its partition decode as Kafka's schemas say, with the values the
// group has; a member leaving tombstones its three records.
func TestConsumerGroupRecordsInKafkaFormat(t *testing.T) {
	dir := t.TempDir()
	parts := statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)
	view := fakeTopics{"orders": 2}
	c := openTest(t, dir, func(o *Options) { o.Offsets = parts; o.Topics = func() TopicView { return view } })
	m1 := &cmem{t: t, c: c, view: view, group: "orders-app", id: "m1"}
	m2 := &cmem{t: t, c: c, view: view, group: "orders-app", id: "m2"}
	sub := func(m *cmem) {
		req := &ConsumerHeartbeat{Group: "orders-app", MemberID: m.id, Subscribed: []string{"orders"}, RebalanceTimeout: 45e9,
			Owned: []OwnedTopic{}, ClientID: "client-" + m.id, ClientHost: "/127.0.0.1", Topics: view}
		res, _ := c.ConsumerHeartbeat(req)(ctx(t))
		if res.Err != 0 {
			t.Fatalf("join: %+v", res)
		}
		m.epoch = res.Epoch
		for _, ta := range res.Assignment {
			m.owned = ta.Partitions
		}
	}
	sub(m1)
	sub(m2)
	m1.owned = []int32{0, 1}
	for range 3 {
		m1.mustHB(true)
		m2.mustHB(true)
	}
	m2.epoch = -1
	m2.mustHB(false)
	m1.mustHB(true)
	c.ConsumerDescribe("orders-app")(ctx(t)) // after the last persist

	p := statelog.PartitionFor("orders-app", testPartitions)
	type rec struct {
		k cgKey
		v []byte
	}
	var recs []rec
	for i, part := range parts {
		part.Replay(func(off int64, r *kmsg.Record) error {
			if i != p {
				t.Errorf("record in partition %d, want %d", i, p)
			}
			k, err := decodeCGKey(r.Key)
			if err != nil {
				t.Fatalf("key %x: %v", r.Key, err)
			}
			if k.Group != "orders-app" {
				t.Fatalf("key %+v", k)
			}
			recs = append(recs, rec{k, r.Value})
			return nil
		})
	}
	last, first := map[string][]byte{}, map[string][]byte{}
	var order []int16
	for _, r := range recs {
		k := fmt.Sprint(r.k.Type, "/", r.k.Member)
		if _, ok := first[k]; !ok {
			first[k] = r.v
		}
		last[k] = r.v
		order = append(order, r.k.Type)
	}
	// The first join: member, partition metadata, epoch, target, target
	// epoch, current assignment (Kafka's order within a heartbeat).
	if !slices.Equal(order[:6], []int16{5, 4, 3, 7, 6, 8}) {
		t.Fatalf("record order of the first join: %v", order[:6])
	}
	if e, err := decodeCGEpoch(last["3/"]); err != nil || e != 3 {
		t.Fatalf("group epoch %d %v", e, err)
	}
	if e, err := decodeCGEpoch(last["6/"]); err != nil || e != 3 {
		t.Fatalf("assignment epoch %d %v", e, err)
	}
	ts, err := decodeCGPartitionMetadata(last["4/"])
	if err != nil || len(ts) != 1 || ts[0].TopicName != "orders" || ts[0].NumPartitions != 2 || ts[0].TopicID != view.id("orders") {
		t.Fatalf("partition metadata %+v %v", ts, err)
	}
	mv, err := decodeCGMember(first["5/m1"]) // later heartbeats (cmem) send no client id
	if err != nil || mv.ClientID != "client-m1" || mv.ClientHost != "/127.0.0.1" || !slices.Equal(mv.SubscribedTopicNames, []string{"orders"}) ||
		mv.RebalanceTimeoutMs != 45000 || mv.InstanceID != nil || mv.SubscribedTopicRegex != nil || mv.ServerAssignor == nil || *mv.ServerAssignor != "uniform" {
		t.Fatalf("member metadata %+v %v", mv, err)
	}
	tgt, err := decodeCGTargetMember(last["7/m1"])
	if err != nil || len(tgt) != 1 || tgt[0].TopicID != view.id("orders") || !slices.Equal(tgt[0].Partitions, []int32{0, 1}) {
		t.Fatalf("target %+v %v", tgt, err)
	}
	cur, err := decodeCGCurrent(last["8/m1"])
	if err != nil || cur.MemberEpoch != 3 || cur.State != memberStateStable || len(cur.Assigned) != 1 ||
		!slices.Equal(cur.Assigned[0].Partitions, []int32{0, 1}) || len(cur.PendingRevocation) != 0 {
		t.Fatalf("current assignment %+v %v", cur, err)
	}
	for _, k := range []string{"5/m2", "7/m2", "8/m2"} {
		if v, ok := last[k]; !ok || v != nil {
			t.Fatalf("%s: want a tombstone, got %x (present %v)", k, v, ok)
		}
	}
}
