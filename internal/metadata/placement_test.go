package metadata

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func imageWith(brokers ...*Broker) *Image {
	im := emptyImage()
	im.Brokers = map[int32]*Broker{}
	for _, b := range brokers {
		im.Brokers[b.ID] = b
	}
	return im
}

func TestPlaceSpreadsLeaders(t *testing.T) {
	im := imageWith(&Broker{ID: 1}, &Broker{ID: 2}, &Broker{ID: 3}, &Broker{ID: 4, Fenced: true})
	reps, err := im.Place(30, 1, 9)
	mustNil(t, err)
	count := map[int32]int{}
	for _, r := range reps {
		if len(r) != 1 {
			t.Fatalf("replicas %v: want one", r)
		}
		count[r[0]]++
	}
	if count[1] != 10 || count[2] != 10 || count[3] != 10 || count[4] != 0 {
		t.Fatalf("leaders per broker %v: want 10 each on the live brokers 1-3, none on fenced 4", count)
	}
	if &reps[0][0] != &reps[3][0] {
		t.Fatal("single-broker replica lists are not shared")
	}
	reps, err = im.Place(6, 3, 9)
	mustNil(t, err)
	for _, r := range reps {
		if len(r) != 3 || len(uniq(r)) != 3 {
			t.Fatalf("rf 3 replicas %v", r)
		}
	}
	if _, err := im.Place(1, 4, 9); !errors.Is(err, ErrReplicationFactor) {
		t.Fatalf("rf 4 over 3 live brokers: %v", err)
	}
	if reps, err := emptyImage().Place(2, 1, 9); err != nil || reps[0][0] != 9 || reps[1][0] != 9 {
		t.Fatalf("no broker registered: %v %v, want everything on self (9)", reps, err)
	}
	if _, err := emptyImage().Place(2, 2, 9); !errors.Is(err, ErrReplicationFactor) {
		t.Fatalf("rf 2 with no broker: %v", err)
	}
}

func TestPlaceAlternatesRacks(t *testing.T) {
	im := imageWith(&Broker{ID: 1, Rack: "a"}, &Broker{ID: 2, Rack: "a"}, &Broker{ID: 3, Rack: "b"}, &Broker{ID: 4, Rack: "b"})
	order := []int32{}
	for _, b := range im.liveBrokers() {
		order = append(order, b.ID)
	}
	if !slices.Equal(order, []int32{1, 3, 2, 4}) {
		t.Fatalf("placement order %v, want racks alternating [1 3 2 4]", order)
	}
	reps, err := im.Place(8, 2, 0)
	mustNil(t, err)
	for _, r := range reps {
		if im.Brokers[r[0]].Rack == im.Brokers[r[1]].Rack {
			t.Fatalf("replicas %v share rack %q", r, im.Brokers[r[0]].Rack)
		}
	}
}

func TestCheckAssignment(t *testing.T) {
	im := imageWith(&Broker{ID: 1}, &Broker{ID: 2})
	mustNil(t, im.CheckAssignment([][]int32{{1}, {2}}))
	for _, bad := range [][][]int32{{{1}, {}}, {{1, 1}}, {{3}}, {{1}, {1, 2}}} {
		if err := im.CheckAssignment(bad); !errors.Is(err, ErrReplicaAssignment) {
			t.Errorf("%v: %v, want ErrReplicaAssignment", bad, err)
		}
	}
}

// Topics written without placement (releases before it) are placed on the
// next broker to register; a broker alone takes every partition.
func TestRegisterPlacesTopics(t *testing.T) {
	im := emptyImage()
	old := &record{Type: "topic", Create: true, Name: "old", ID: &TopicID{1}, Partitions: 3}
	mustNil(t, im.check(old))
	im.apply(old)
	if im.Topics["old"].Placed() || im.Topics["old"].Leader(0) != -1 {
		t.Fatal("a topic without replicas counts as placed")
	}
	reg := &record{Type: "register_broker", Broker: &Broker{ID: 5}, index: 10}
	next := im.copyFor(reg)
	next.apply(reg)
	if im.Topics["old"].Placed() {
		t.Fatal("placing on registration changed the older image")
	}
	if got := next.Topics["old"]; !got.Placed() || got.Leader(2) != 5 || next.ByID[got.ID] != got {
		t.Fatalf("after broker 5 registered: %+v", got)
	}
	// Another broker registering moves nothing.
	reg2 := &record{Type: "register_broker", Broker: &Broker{ID: 6}, index: 11}
	if next.placesOnRegister(reg2.Broker, false) {
		t.Fatal("a second broker would re-place placed topics")
	}
	// Alone with another id: everything moves to it.
	alone := &record{Type: "register_broker", Broker: &Broker{ID: 7}, Alone: true, index: 12}
	third := next.copyFor(alone)
	third.apply(alone)
	if got := third.Topics["old"]; got.Leader(0) != 7 || got.Leader(2) != 7 || next.Topics["old"].Leader(0) != 5 {
		t.Fatalf("alone as 7: %+v (before: %+v)", got, next.Topics["old"])
	}
	if third.placesOnRegister(alone.Broker, true) {
		t.Fatal("alone again as 7 would re-place")
	}
}

func TestPlacementPersists(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	mustNil(t, err)
	mustNil(t, s.Register(BrokerOptions{Listeners: []Listener{{Name: "PLAINTEXT", Host: "h", Port: 1}}}))
	_, err = s.CreateTopic("t", 4, nil)
	mustNil(t, err)
	mustNil(t, s.SetPartitions("t", 6))
	if got := s.Image().Topics["t"]; len(got.Replicas) != 6 || got.Leader(5) != 1 {
		t.Fatalf("placement %v", got.Replicas)
	}
	if err := s.AddPartitions("t", 7, [][]int32{{2}}); !errors.Is(err, ErrReplicaAssignment) {
		t.Fatalf("new partition on an unregistered broker: %v", err)
	}
	if err := s.AddPartitions("t", 8, [][]int32{{1}}); !errors.Is(err, ErrReplicaAssignment) {
		t.Fatalf("one assignment for two new partitions: %v", err)
	}
	if _, err := s.Create(TopicSpec{Name: "rf2", Partitions: 1, ReplicationFactor: 2}); !errors.Is(err, ErrReplicationFactor) {
		t.Fatalf("rf 2 on one broker: %v", err)
	}
	mustNil(t, s.Close())
	s, err = Open(dir, nil)
	mustNil(t, err)
	defer s.Close()
	if got := s.Image().Topics["t"]; len(got.Replicas) != 6 || got.Leader(0) != 1 || got.Leader(5) != 1 {
		t.Fatalf("placement after reopen %v", got.Replicas)
	}
}

// Producer id blocks allocated by several brokers at once never overlap.
func TestProducerIDBlocksDisjoint(t *testing.T) {
	c := newTestCluster(t, 3)
	type block struct{ from, to int64 }
	var mu sync.Mutex
	var got []block
	var wg sync.WaitGroup
	for i := range 3 {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from, err := c.stores[i].AllocateProducerIDs(1000)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, block{from, from + 1000})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	slices.SortFunc(got, func(a, b block) int { return int(a.from - b.from) })
	for i := 1; i < len(got); i++ {
		if got[i].from < got[i-1].to {
			t.Fatalf("blocks overlap: %v", got)
		}
	}
	if len(got) != 15 {
		t.Fatalf("%d blocks, want 15", len(got))
	}
	c.waitFor("next producer id", func(im *Image) bool { return im.NextProducerID == got[len(got)-1].to })
}

// A topic created on one member is placed over the registered brokers and
// every member sees the same placement; Changes signals each member.
func TestPlacementAcrossMembers(t *testing.T) {
	c := newTestCluster(t, 3)
	for i, s := range c.stores {
		mustNil(t, s.Register(BrokerOptions{Listeners: []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: int32(9000 + i)}},
			HeartbeatInterval: 100 * time.Millisecond}))
	}
	c.waitFor("three brokers", func(im *Image) bool { return len(im.Brokers) == 3 })
	// The leader learns its followers' log ends from their heartbeats.
	leader := c.stores[c.leader()]
	deadline := time.Now().Add(5 * time.Second)
	for {
		q := leader.Quorum()
		if len(q.Progress) >= 2 {
			for id, p := range q.Progress {
				if id != q.Self && (p.LogEnd == 0 || p.At.IsZero()) {
					t.Fatalf("member %d progress %+v", id, p)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader knows the progress of %d followers: %+v", len(q.Progress), q.Progress)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for len(c.stores[2].Changes()) > 0 {
		<-c.stores[2].Changes()
	}
	_, err := c.stores[1].CreateTopic("spread", 9, nil)
	mustNil(t, err)
	select {
	case <-c.stores[2].Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("member 3 was not signalled")
	}
	c.waitFor("topic", func(im *Image) bool { return im.Topics["spread"] != nil })
	want := fmt.Sprint(c.stores[0].Image().Topics["spread"].Replicas)
	count := map[int32]int{}
	for _, r := range c.stores[0].Image().Topics["spread"].Replicas {
		count[r[0]]++
	}
	if count[1] != 3 || count[2] != 3 || count[3] != 3 {
		t.Fatalf("leaders %v: want 3 per broker", count)
	}
	for i, s := range c.stores {
		if got := fmt.Sprint(s.Image().Topics["spread"].Replicas); got != want {
			t.Fatalf("member %d sees %s, member 1 %s", i+1, got, want)
		}
	}
}

// A broker stopping cleanly is fenced at once, and its next start registers
// without waiting for the old session to run out. The quorum's leader
// hands over its leadership on the way, so the others see the fence at once
// too (not after an election timeout).
func TestDeregister(t *testing.T) {
	c := newTestCluster(t, 3) // session timeout 1 s
	for i, s := range c.stores {
		mustNil(t, s.Register(BrokerOptions{Listeners: []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: int32(9000 + i)}},
			HeartbeatInterval: 100 * time.Millisecond}))
	}
	c.waitFor("three brokers", func(im *Image) bool { return len(im.Brokers) == 3 })
	v := c.leader()
	id := int32(v + 1)
	start := time.Now()
	mustNil(t, c.stores[v].Deregister(2*time.Second))
	for i, s := range c.stores {
		for i != v && !s.Image().Brokers[id].Fenced {
			if time.Since(start) > 500*time.Millisecond {
				t.Fatalf("member %d sees broker %d unfenced %v after it deregistered", i+1, id, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if nl := c.leader(); nl == v {
		t.Fatalf("member %d still leads after deregistering", v+1)
	}
	// Still fenced a session later (its heartbeats stopped, nothing unfences it).
	time.Sleep(1500 * time.Millisecond)
	if !c.stores[(v+1)%3].Image().Brokers[id].Fenced {
		t.Fatal("unfenced after deregistering")
	}
	// A new incarnation registers at once.
	start = time.Now()
	mustNil(t, c.stores[v].Register(BrokerOptions{Listeners: []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9001}}}))
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("re-registration took %v", d)
	}
	c.waitFor("broker back", func(im *Image) bool { return !im.Brokers[id].Fenced })
	// Alone: nothing to do.
	s, err := Open(t.TempDir(), nil)
	mustNil(t, err)
	defer s.Close()
	mustNil(t, s.Register(BrokerOptions{}))
	mustNil(t, s.Deregister(time.Second))
	if s.Image().Brokers[1].Fenced {
		t.Fatal("a broker alone fenced itself")
	}
}

// A follower of the image can tell which topic one change touched.
func TestTopicsChangedSince(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	mustNil(t, err)
	defer s.Close()
	im0 := s.Image()
	if _, ok := im0.TopicsChangedSince(nil); ok {
		t.Fatal("changes since nothing are known")
	}
	_, err = s.CreateTopic("a", 1, nil)
	mustNil(t, err)
	im1 := s.Image()
	if names, ok := im1.TopicsChangedSince(im0); !ok || len(names) != 1 || names[0] != "a" {
		t.Fatalf("one creation: %v %v", names, ok)
	}
	mustNil(t, s.SetBrokerConfigs(map[string]string{"log.retention.ms": "1000"}))
	im2 := s.Image()
	if names, ok := im2.TopicsChangedSince(im1); !ok || len(names) != 0 {
		t.Fatalf("a broker config change: %v %v", names, ok)
	}
	if names, ok := im2.TopicsChangedSince(im0); ok {
		t.Fatalf("two changes back: %v, want unknown", names)
	}
	mustNil(t, s.SetTopicConfigs("a", map[string]string{"retention.ms": "5"}))
	mustNil(t, s.DeleteTopic("a"))
	im4 := s.Image()
	if names, ok := im4.TopicsChangedSince(im2); ok {
		t.Fatalf("two topic changes back: %v, want unknown", names)
	}
}
