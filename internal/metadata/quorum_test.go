package metadata

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCluster is n metadata quorum members over loopback, each with its own
// data dir and cluster listener.
type testCluster struct {
	t      *testing.T
	peers  []Peer
	dirs   []string
	stores []*Store
}

func newTestCluster(t *testing.T, n int) *testCluster {
	c := &testCluster{t: t, stores: make([]*Store, n)}
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		c.peers = append(c.peers, Peer{ID: int32(i + 1), Addr: ln.Addr().String()})
		c.dirs = append(c.dirs, t.TempDir())
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stores[i], errs[i] = c.open(i, lns[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			if s != nil {
				s.Close()
			}
		}
	})
	return c
}

func (c *testCluster) open(i int, ln net.Listener) (*Store, error) {
	return OpenWith(Options{DataDir: c.dirs[i], NodeID: int32(i + 1), Peers: c.peers, Listener: ln,
		HeartbeatTimeout: 200 * time.Millisecond, BrokerSessionTimeout: time.Second})
}

// restart reopens member i on its data dir and port.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	ln, err := net.Listen("tcp", c.peers[i].Addr)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.stores[i], err = c.open(i, ln); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, s := range c.stores {
			if s != nil && s.q.r.State() == raft.Leader {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader after 10 s")
	return -1
}

// converged waits until every open member's image has the topics named.
func (c *testCluster) converged(names ...string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := ""
		for i, s := range c.stores {
			if s == nil {
				continue
			}
			for _, n := range names {
				if s.Image().Topics[n] == nil {
					missing = fmt.Sprintf("node %d lacks topic %s", i+1, n)
				}
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal(missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQuorumThreeNodes: changes made on any member (forwarded to the
// leader when it is not one) reach every member, with one cluster id and
// the same topic ids; the same topic created on two members at once is
// created once; the quorum survives the loss of its leader, and the old
// leader catches up when it comes back.
func TestQuorumThreeNodes(t *testing.T) {
	c := newTestCluster(t, 3)
	id := c.stores[0].Image().ClusterID
	for i, s := range c.stores {
		if s.Image().ClusterID != id || id == "" {
			t.Fatalf("node %d cluster id %q, node 1 %q", i+1, s.Image().ClusterID, id)
		}
	}
	for i, s := range c.stores {
		if _, err := s.CreateTopic(fmt.Sprint("t", i), int32(i+1), nil); err != nil {
			t.Fatalf("create on node %d: %v", i+1, err)
		}
		// A change is in the image of the member that made it when the
		// call returns.
		if s.Image().Topics[fmt.Sprint("t", i)] == nil {
			t.Fatalf("node %d does not see its own change", i+1)
		}
	}
	c.converged("t0", "t1", "t2")
	for i, s := range c.stores {
		for _, name := range []string{"t0", "t1", "t2"} {
			if s.Image().Topics[name].ID != c.stores[0].Image().Topics[name].ID {
				t.Fatalf("node %d: topic %s has another id", i+1, name)
			}
		}
	}

	// Racing creates of one name from every member: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, len(c.stores))
	for i, s := range c.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateTopic("race", 1, nil)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrTopicExists):
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates of one topic succeeded: %v", won, errs)
	}
	if err := c.stores[1].SetPartitions("race", 4); err != nil {
		t.Fatal(err)
	}
	if err := c.stores[2].SetPartitions("race", 4); !errors.Is(err, ErrPartitionsLE) {
		t.Fatalf("same growth again from another node: %v, want ErrPartitionsLE", err)
	}

	// The leader goes away: the others elect one and take changes.
	l := c.leader()
	if err := c.stores[l].Close(); err != nil {
		t.Fatal(err)
	}
	c.stores[l] = nil
	other := (l + 1) % 3
	if _, err := c.stores[other].CreateTopic("after-failover", 1, nil); err != nil {
		t.Fatalf("create after the leader left: %v", err)
	}
	c.converged("after-failover")
	c.restart(l)
	c.converged("t0", "t1", "t2", "race", "after-failover")
	if got := c.stores[l].Image().Topics["race"].Partitions; got != 4 {
		t.Fatalf("restarted node: race has %d partitions, want 4", got)
	}
	if _, err := c.stores[l].CreateTopic("from-returned", 1, nil); err != nil {
		t.Fatal(err)
	}
	c.converged("from-returned")
}

// TestQuorumNoMajority: with two of three members gone a change is not
// acknowledged, and it is not lost either way: it is applied once a
// majority is back.
func TestQuorumNoMajority(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	survivor := (l + 1) % 3
	for i := range c.stores {
		if i != survivor {
			c.stores[i].Close()
			c.stores[i] = nil
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.stores[survivor].CreateTopic("waits", 1, nil)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a change was acknowledged by one member of three: %v", err)
	case <-time.After(time.Second):
	}
	c.restart((survivor + 1) % 3)
	if err := <-done; err != nil {
		t.Fatalf("change once a majority is back: %v", err)
	}
	c.converged("waits")
}

// TestSnapshotRestore: an image taken into a snapshot (the log before it
// truncated) comes back on reopen, with the changes made after it.
func TestSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i := range 50 {
		if _, err := s.CreateTopic(fmt.Sprint("before-", i), 1, map[string]string{"retention.ms": "1000"}); err != nil {
			t.Fatal(err)
		}
	}
	mustNil(t, s.ReserveProducerIDs(777))
	if err := s.q.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("after", 2, nil); err != nil {
		t.Fatal(err)
	}
	want := s.Image()
	mustNil(t, s.Close())
	r := openStore(t, dir)
	defer r.Close()
	got := r.Image()
	if got.ClusterID != want.ClusterID || got.NextProducerID != 777 || len(got.Topics) != 51 || len(got.ByID) != 51 {
		t.Fatalf("after restore: cluster %q next pid %d, %d topics (%d by id)", got.ClusterID, got.NextProducerID, len(got.Topics), len(got.ByID))
	}
	for name, wt := range want.Topics {
		gt := got.Topics[name]
		if gt == nil || gt.ID != wt.ID || gt.Partitions != wt.Partitions || gt.Configs["retention.ms"] != wt.Configs["retention.ms"] || got.ByID[gt.ID] != gt {
			t.Fatalf("topic %s: %+v, want %+v", name, gt, wt)
		}
	}
}

func TestParsePeers(t *testing.T) {
	ps, err := ParsePeers("1@127.0.0.1:9100, 2@host-b:9100,3@[::1]:9100")
	if err != nil || len(ps) != 3 || ps[1] != (Peer{2, "host-b:9100"}) || ps[2].Addr != "[::1]:9100" {
		t.Fatalf("%v %v", ps, err)
	}
	for _, bad := range []string{"1", "x@h:1", "1@nohost", "1@h:1,1@h:2", "-1@h:1"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q) accepted", bad)
		}
	}
}

// TestNodeIDChangeAlone: a broker alone restarted with another node id is
// still its quorum's voter (and leader), with its metadata.
func TestNodeIDChangeAlone(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenWith(Options{DataDir: dir, NodeID: 1})
	mustNil(t, err)
	_, err = s.CreateTopic("kept", 1, nil)
	mustNil(t, err)
	mustNil(t, s.Close())
	for _, id := range []int32{7, 7, 1} {
		done := make(chan struct{})
		var r *Store
		go func() {
			defer close(done)
			r, err = OpenWith(Options{DataDir: dir, NodeID: id})
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("open as node %d still waiting for a quorum after 20 s", id)
		}
		mustNil(t, err)
		if q := r.Quorum(); q.LeaderID != id || q.Self != id || len(q.Voters) != 1 || q.Voters[0] != id {
			t.Fatalf("as node %d: %+v", id, q)
		}
		if r.Image().Topics["kept"] == nil {
			t.Fatalf("as node %d: topic lost", id)
		}
		_, err = r.CreateTopic(fmt.Sprint("as-", id, "-", time.Now().UnixNano()), 1, nil)
		mustNil(t, err)
		mustNil(t, r.Close())
	}
}

// waitFor polls cond on every open member until it holds everywhere.
func (c *testCluster) waitFor(what string, cond func(im *Image) bool) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, s := range c.stores {
			if s != nil && !cond(s.Image()) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not within 15 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func brokerOpts(i int) BrokerOptions {
	return BrokerOptions{Listeners: []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: int32(9092 + i)}},
		Rack: fmt.Sprint("rack-", i%2), HeartbeatInterval: 100 * time.Millisecond}
}

// TestBrokerRegistration: brokers register through any member and every
// member sees them with their listeners and distinct broker epochs; a
// broker whose heartbeats stop is fenced after its session, even when it
// was the controller; it registers again with a new epoch when it comes
// back; a fenced broker that heartbeats again is unfenced; a second process
// with a live broker's id is refused.
func TestBrokerRegistration(t *testing.T) {
	c := newTestCluster(t, 3)
	for i, s := range c.stores {
		if err := s.Register(brokerOpts(i)); err != nil {
			t.Fatalf("register node %d: %v", i+1, err)
		}
		if b := s.Image().Brokers[int32(i+1)]; b == nil || b.Fenced || b.Listeners[0].Port != int32(9092+i) {
			t.Fatalf("node %d does not see its own registration: %+v", i+1, b)
		}
	}
	c.waitFor("3 unfenced brokers", func(im *Image) bool {
		bs := im.SortedBrokers()
		return len(bs) == 3 && !bs[0].Fenced && !bs[1].Fenced && !bs[2].Fenced &&
			bs[0].Epoch != bs[1].Epoch && bs[1].Epoch != bs[2].Epoch && bs[2].Rack == "rack-0"
	})
	// Sessions outlive several timeouts while heartbeats flow.
	time.Sleep(2500 * time.Millisecond)
	for _, b := range c.stores[0].Image().SortedBrokers() {
		if b.Fenced {
			t.Fatalf("broker %d fenced while heartbeating", b.ID)
		}
	}

	// A second process with node 2's id is refused while node 2 lives.
	dup := &record{Type: "register_broker", Broker: &Broker{ID: 2, Incarnation: "another-process"}}
	if err := c.stores[0].q.registerBroker(dup); !errors.Is(err, ErrDuplicateBroker) {
		t.Fatalf("duplicate registration: %v, want ErrDuplicateBroker", err)
	}

	// The controller fences a broker, whose next heartbeat unfences it.
	l := c.leader()
	b2 := c.stores[l].Image().Brokers[2]
	if _, err := c.stores[l].q.leaderApply(&record{Type: "fence_broker", NodeID: 2, Epoch: b2.Epoch}); err != nil {
		t.Fatal(err)
	}
	c.waitFor("broker 2 unfenced by its heartbeat", func(im *Image) bool {
		b := im.Brokers[2]
		return b != nil && !b.Fenced && b.Epoch == b2.Epoch
	})

	// The leader's process goes away: the new controller fences it.
	gone := int32(l + 1)
	old := c.stores[l].Image().Brokers[gone]
	mustNil(t, c.stores[l].Close())
	c.stores[l] = nil
	c.waitFor(fmt.Sprintf("broker %d fenced", gone), func(im *Image) bool {
		b := im.Brokers[gone]
		return b != nil && b.Fenced && b.Epoch == old.Epoch
	})
	c.restart(l)
	mustNil(t, c.stores[l].Register(brokerOpts(l)))
	c.waitFor(fmt.Sprintf("broker %d back with a new epoch", gone), func(im *Image) bool {
		b := im.Brokers[gone]
		return b != nil && !b.Fenced && b.Epoch > old.Epoch && b.Incarnation != old.Incarnation
	})
}

// TestBrokerAlone: a broker alone registers itself; started again with
// another node id it is the only broker listed, and its registration is in
// snapshots.
func TestBrokerAlone(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenWith(Options{DataDir: dir, NodeID: 1})
	mustNil(t, err)
	mustNil(t, s.Register(brokerOpts(0)))
	mustNil(t, s.Close())
	r, err := OpenWith(Options{DataDir: dir, NodeID: 4})
	mustNil(t, err)
	if got := r.Image().Brokers[1]; got == nil {
		t.Fatal("registration lost across a restart")
	}
	mustNil(t, r.Register(brokerOpts(3)))
	if bs := r.Image().SortedBrokers(); len(bs) != 1 || bs[0].ID != 4 || bs[0].Listeners[0].Port != 9095 {
		t.Fatalf("brokers %+v, want only node 4", bs)
	}
	mustNil(t, r.q.r.Snapshot().Error())
	mustNil(t, r.Close())
	r2, err := OpenWith(Options{DataDir: dir, NodeID: 4})
	mustNil(t, err)
	defer r2.Close()
	if bs := r2.Image().SortedBrokers(); len(bs) != 1 || bs[0].ID != 4 || bs[0].Rack != "rack-1" {
		t.Fatalf("brokers after a snapshot restore: %+v", bs)
	}
}

// TestCloseDuringHeartbeats: closing a member whose heartbeats find no
// leader (the others are gone) returns at once, not after the 30 s a change
// waits for a leader.
func TestCloseDuringHeartbeats(t *testing.T) {
	c := newTestCluster(t, 3)
	for i, s := range c.stores {
		mustNil(t, s.Register(brokerOpts(i)))
	}
	l := c.leader()
	last := (l + 1) % 3
	for i := range c.stores {
		if i != last {
			mustNil(t, c.stores[i].Close())
			c.stores[i] = nil
		}
	}
	time.Sleep(500 * time.Millisecond) // its heartbeats now wait for a leader
	t0 := time.Now()
	mustNil(t, c.stores[last].Close())
	c.stores[last] = nil
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
