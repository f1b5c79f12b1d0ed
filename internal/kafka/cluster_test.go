package kafka

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openClusterFixtures opens n brokers in one process over a metadata quorum
// of n voters, each registered at 127.0.0.1:9000+id (nothing listens there:
// the tests call the handlers).
func openClusterFixtures(t *testing.T, n int) []*brokerFixture {
	t.Helper()
	lns := make([]net.Listener, n)
	var peers []metadata.Peer
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		peers = append(peers, metadata.Peer{ID: int32(i + 1), Addr: ln.Addr().String()})
	}
	fs := make([]*brokerFixture, n)
	metas := make([]*metadata.Store, n)
	errs := make([]error, n)
	dirs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			metas[i], errs[i] = metadata.OpenWith(metadata.Options{DataDir: dirs[i], NodeID: int32(i + 1), Peers: peers,
				Listener: lns[i], HeartbeatTimeout: 200 * time.Millisecond, BrokerSessionTimeout: 2 * time.Second})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := int32(i + 1)
		opts := Options{DataDir: dirs[i], NodeID: id, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9000 + id,
			AutoCreateTopics: true, DefaultPartitions: 3, Defaults: testDefaults()}
		com := commit.New(commit.Options{})
		b, err := New(opts, metas[i], com)
		if err != nil {
			t.Fatal(err)
		}
		if err := metas[i].Register(metadata.BrokerOptions{Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9000 + id}},
			HeartbeatInterval: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		f := &brokerFixture{t: t, dir: dirs[i], opts: opts, meta: metas[i], com: com, b: b}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); com.Run(ctx) }()
		var once sync.Once
		f.stopCommitter = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(f.close)
		fs[i] = f
	}
	waitUntil(t, "every broker registered everywhere", func() bool {
		for _, f := range fs {
			if len(f.meta.Image().Brokers) != n {
				return false
			}
		}
		return true
	})
	return fs
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Partitions are spread over the brokers; each broker serves only those it
// leads and sends clients to the leader of the others (KIP-951); topics
// created and deleted on one broker appear and go on the others.
func TestClusterPlacementAndRouting(t *testing.T) {
	fs := openClusterFixtures(t, 3)
	f1 := fs[0]
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "spread", 6, -1
	create.Topics = append(create.Topics, ct)
	create.TimeoutMillis = 5000
	wantCode(t, "create", f1.do(create, 5).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)

	for _, f := range fs {
		waitUntil(t, "topic on every broker", func() bool { return f.b.topic("spread") != nil })
	}
	tp := f1.meta.Image().Topics["spread"]
	led := map[int32]int{}
	for p := range int32(6) {
		led[tp.Leader(p)]++
	}
	if led[1] != 2 || led[2] != 2 || led[3] != 2 {
		t.Fatalf("leaders per broker %v, want 2 each", led)
	}

	// Metadata from any broker: every broker listed, each partition's leader.
	md := kmsg.NewPtrMetadataRequest()
	mdt := kmsg.NewMetadataRequestTopic()
	mdt.Topic = kmsg.StringPtr("spread")
	md.Topics = append(md.Topics, mdt)
	resp := fs[2].do(md, 12).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", len(resp.Brokers))
	}
	for _, mp := range resp.Topics[0].Partitions {
		if mp.ErrorCode != 0 || mp.Leader != tp.Leader(mp.Partition) || len(mp.Replicas) != 1 || mp.Replicas[0] != mp.Leader {
			t.Fatalf("partition %d: %+v, image leader %d", mp.Partition, mp, tp.Leader(mp.Partition))
		}
	}

	for p := range int32(6) {
		leader := tp.Leader(p)
		for _, f := range fs {
			batch := makeRecordBatch(t, plainBatch(2))
			pr := f.do(produceReq("spread", p, -1, batch), 10).(*kmsg.ProduceResponse)
			sp := pr.Topics[0].Partitions[0]
			if f.opts.NodeID == leader {
				wantCode(t, "produce on the leader", sp.ErrorCode, nil)
				continue
			}
			wantCode(t, "produce elsewhere", sp.ErrorCode, kerr.NotLeaderForPartition)
			if sp.CurrentLeader.LeaderID != leader || len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != leader || pr.Brokers[0].Port != 9000+leader {
				t.Fatalf("partition %d from broker %d: current leader %+v, endpoints %+v; want broker %d", p, f.opts.NodeID, sp.CurrentLeader, pr.Brokers, leader)
			}
			fr := f.do(fetchReq("", tp.ID, p, 0, 1<<20), 16).(*kmsg.FetchResponse)
			fp := fr.Topics[0].Partitions[0]
			wantCode(t, "fetch elsewhere", fp.ErrorCode, kerr.NotLeaderForPartition)
			if fp.CurrentLeader.LeaderID != leader || len(fr.Brokers) != 1 || fr.Brokers[0].NodeID != leader {
				t.Fatalf("fetch partition %d from broker %d: %+v %+v", p, f.opts.NodeID, fp.CurrentLeader, fr.Brokers)
			}
			lo := kmsg.NewPtrListOffsetsRequest()
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "spread"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = p, -1
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			wantCode(t, "list offsets elsewhere", f.do(lo, 7).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode, kerr.NotLeaderForPartition)
		}
		// Only the leader has the partition's directory.
		for _, f := range fs {
			_, err := os.Stat(partitionDir(f.dir, "spread", p))
			if (err == nil) != (f.opts.NodeID == leader) {
				t.Fatalf("partition %d directory on broker %d: %v (leader %d)", p, f.opts.NodeID, err, leader)
			}
		}
	}

	// Deleted on broker 2: every broker forgets it and removes its files.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"spread"}
	del.TimeoutMillis = 5000
	wantCode(t, "delete", fs[1].do(del, 3).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, nil)
	for _, f := range fs {
		waitUntil(t, "topic gone everywhere", func() bool { return f.b.topic("spread") == nil })
		for p := range int32(6) {
			if _, err := os.Stat(partitionDir(f.dir, "spread", p)); err == nil {
				t.Fatalf("broker %d kept partition %d's directory", f.opts.NodeID, p)
			}
		}
	}
}

// A group's coordinator is the leader of its __consumer_offsets partition:
// FindCoordinator names it from every broker, and the others answer
// NOT_COORDINATOR.
func TestClusterCoordinators(t *testing.T) {
	fs := openClusterFixtures(t, 3)
	for _, f := range fs {
		f.openGroups(group.Options{})
	}
	t0 := fs[0].meta.Image().Topics[OffsetsTopic]
	for _, g := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		coord := t0.Leader(int32(statelog.PartitionFor(g, int(t0.Partitions))))
		for _, f := range fs {
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = g
			r := f.do(fc, 3).(*kmsg.FindCoordinatorResponse)
			if r.ErrorCode != 0 || r.NodeID != coord || r.Port != 9000+coord {
				t.Fatalf("group %s from broker %d: %+v, want broker %d", g, f.opts.NodeID, r, coord)
			}
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = g, "m", 1
			code := f.do(hb, 4).(*kmsg.HeartbeatResponse).ErrorCode
			if f.opts.NodeID == coord {
				if code == kerr.NotCoordinator.Code {
					t.Fatalf("coordinator %d refused group %s", coord, g)
				}
			} else {
				wantCode(t, "heartbeat elsewhere", code, kerr.NotCoordinator)
			}
		}
	}
}

// WriteTxnMarkers (from another broker's transaction coordinator) writes a
// durable marker to each partition this broker leads and refuses the
// others.
func TestWriteTxnMarkers(t *testing.T) {
	fs := openClusterFixtures(t, 2)
	if _, err := fs[0].b.createTopic("m", 4, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "topic on broker 2", func() bool { return fs[1].b.topic("m") != nil })
	tp := fs[0].meta.Image().Topics["m"]
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = 7, 0, true
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "m", []int32{0, 1, 2, 3}
	mk.Topics = append(mk.Topics, mt, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: "nope", Partitions: []int32{0}})
	req.Markers = append(req.Markers, mk)
	resp := fs[0].do(req, 1).(*kmsg.WriteTxnMarkersResponse)
	for _, sp := range resp.Markers[0].Topics[0].Partitions {
		if tp.Leader(sp.Partition) == 1 {
			wantCode(t, "marker on a led partition", sp.ErrorCode, nil)
			p := fs[0].b.partition("m", sp.Partition)
			off, err := p.Offsets()
			if err != nil || off.HighWatermark != 1 {
				t.Fatalf("partition %d after its marker: %+v %v, want high watermark 1 (durable)", sp.Partition, off, err)
			}
		} else {
			wantCode(t, "marker on another broker's partition", sp.ErrorCode, kerr.NotLeaderForPartition)
		}
	}
	wantCode(t, "unknown topic", resp.Markers[0].Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
}

// An acks=all produce to a replicated partition waits for its in-sync
// followers (none fetch here: nothing listens at their addresses); once
// they leave the in-sync set it is answered; with fewer in sync than
// min.insync.replicas acks=all is refused and acks=1 is not; a wait in
// progress when the broker shuts down is answered NOT_LEADER_OR_FOLLOWER at
// once.
func TestAcksAllWaitsForFollowers(t *testing.T) {
	fs := openClusterFixtures(t, 3)
	f := fs[0]
	for _, name := range []string{"rt", "rt-min2", "rt-stop"} {
		configs := map[string]string(nil)
		if name == "rt-min2" {
			configs = map[string]string{"min.insync.replicas": "2"}
		}
		if _, err := f.b.createTopicWith(name, 1, 3, [][]int32{{1, 2, 3}}, configs); err != nil {
			t.Fatal(err)
		}
	}
	batch := func() []byte {
		return storage.EncodeBatch(time.Now().UnixMilli(), []kmsg.Record{{Value: []byte("x")}})
	}
	produce := func(topic string, acks int16) <-chan int16 {
		out := make(chan int16, 1)
		go func() {
			resp := f.do(produceReq(topic, 0, acks, batch()), 9).(*kmsg.ProduceResponse)
			out <- resp.Topics[0].Partitions[0].ErrorCode
		}()
		return out
	}
	answered := func(ch <-chan int16, within time.Duration) (int16, bool) {
		select {
		case c := <-ch:
			return c, true
		case <-time.After(within):
			return 0, false
		}
	}

	waiting := produce("rt", -1)
	if c, ok := answered(waiting, 300*time.Millisecond); ok {
		t.Fatalf("acks=all answered (%v) with no follower fetching", kerr.ErrorForCode(c))
	}
	f.b.repl.shrink(time.Now().Add(time.Minute)) // replica.lag.time.max.ms passed
	if c, ok := answered(waiting, 5*time.Second); !ok || c != 0 {
		t.Fatalf("acks=all after the followers left the in-sync set: %v (answered %v)", kerr.ErrorForCode(c), ok)
	}

	// min.insync.replicas=2: an acks=all waiting when the set shrinks to
	// the leader alone is appended but answered
	// NOT_ENOUGH_REPLICAS_AFTER_APPEND; the next is refused outright.
	waiting = produce("rt-min2", -1)
	if c, ok := answered(waiting, 300*time.Millisecond); ok {
		t.Fatalf("acks=all answered (%v) with no follower fetching", kerr.ErrorForCode(c))
	}
	f.b.repl.shrink(time.Now().Add(time.Minute))
	if c, ok := answered(waiting, 5*time.Second); !ok || c != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("acks=all when the set shrank below min.insync.replicas: %v (answered %v)", kerr.ErrorForCode(c), ok)
	}
	if c, _ := answered(produce("rt-min2", -1), 5*time.Second); c != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with one replica in sync and min.insync.replicas=2: %v", kerr.ErrorForCode(c))
	}
	if c, _ := answered(produce("rt-min2", 1), 5*time.Second); c != 0 {
		t.Fatalf("acks=1 below min.insync.replicas: %v", kerr.ErrorForCode(c))
	}

	waiting = produce("rt-stop", -1)
	if _, ok := answered(waiting, 300*time.Millisecond); ok {
		t.Fatal("acks=all answered with no follower fetching")
	}
	f.b.EndWaits()
	if c, ok := answered(waiting, 5*time.Second); !ok || c != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=all waiting at shutdown: %v (answered %v)", kerr.ErrorForCode(c), ok)
	}
}
