package e2e

// The metadata quorum (a Raft log; a broker alone is its only voter): every
// acknowledged CreateTopics survives kill -9 with its topic id, and
// DescribeQuorum reports the broker as leader and only voter.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMetadataKillDuringCreates(t *testing.T) {
	dir := t.TempDir()
	b := StartBrokerIn(t, dir)
	var mu sync.Mutex
	acked := map[string]kadm.TopicID{} // name -> id of every acknowledged create
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RetryTimeout(time.Second))
		if err != nil {
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := adm.CreateTopic(ctx, int32(1+i%3), 1, nil, fmt.Sprint("md-crash-", i))
			cancel()
			if err != nil || resp.Err != nil {
				return // the broker is gone
			}
			mu.Lock()
			acked[resp.Topic] = resp.ID
			mu.Unlock()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	b.Kill()
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 10 {
		t.Fatalf("only %d topics created before the kill", len(acked))
	}

	b = StartBrokerIn(t, dir)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, time.Minute)
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range acked {
		td, ok := md.Topics[name]
		if !ok {
			t.Fatalf("acknowledged topic %s lost after kill -9 (%d acknowledged)", name, len(acked))
		}
		if td.ID != id {
			t.Fatalf("topic %s has id %s after restart, %s when created", name, td.ID, id)
		}
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 1 || fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port) != b.Addr {
		t.Fatalf("brokers %+v, want this one at %s", md.Brokers, b.Addr)
	}
	// Every listed topic still takes records.
	cl := b.Client(t)
	for name := range acked {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatalf("produce to %s after restart: %v", name, err)
		}
		break
	}
	t.Logf("%d topics acknowledged before kill -9, all present after restart", len(acked))

	// DescribeQuorum: this broker leads the quorum of one; its high
	// watermark moves with a metadata change.
	describe := func() kmsg.DescribeQuorumResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 1 || len(p.CurrentVoters) != 1 || p.CurrentVoters[0].ReplicaID != 1 {
			t.Fatalf("DescribeQuorum: %+v", p)
		}
		return p
	}
	before := describe()
	clientsCreateTopic(t, adm, "md-after", 1, nil)
	if after := describe(); after.HighWatermark <= before.HighWatermark || after.LeaderEpoch < before.LeaderEpoch {
		t.Fatalf("DescribeQuorum after a change: hw %d epoch %d, before hw %d epoch %d",
			after.HighWatermark, after.LeaderEpoch, before.HighWatermark, before.LeaderEpoch)
	}
}

// TestClusterStatusCommand: `chronik-server cluster status HOST:PORT` shows
// the broker and the metadata quorum it leads; against nothing it fails
// with a hint.
func TestClusterStatusCommand(t *testing.T) {
	b := StartBroker(t)
	out, err := exec.Command(binary, "cluster", "status", b.Addr).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	for _, want := range []string{"brokers       1", b.Addr, "up", "leads", ", 0 without a leader", "metadata quorum: leader 1", "voter", ", leader"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("cluster status lacks %q:\n%s", want, out)
		}
	}
	b.Stop()
	out, err = exec.Command(binary, "cluster", "status", b.Addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is it running?") {
		t.Fatalf("cluster status of a stopped broker: %v\n%s", err, out)
	}
}
