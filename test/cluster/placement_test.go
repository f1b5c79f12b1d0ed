package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceAll produces n records keyed k<i> to topic (acks=all, idempotent)
// and returns the values acknowledged.
func produceAll(t *testing.T, cl *kgo.Client, topic, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		v := fmt.Sprintf("%s-%d", prefix, i)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce %s: %v", prefix, firstErr)
	}
}

// consumeGroup consumes topic in group until want values are seen (each
// must be seen exactly once) and commits.
func consumeGroup(t *testing.T, seeds []string, group, topic string, want map[string]bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	ctx := cluster.Ctx(t, 60*time.Second)
	for len(seen) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s: %d of %d records consumed", group, len(seen), len(want))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !want[v] {
				t.Fatalf("unexpected record %q", v)
			}
			if seen[v]++; seen[v] > 1 {
				t.Fatalf("record %q consumed twice", v)
			}
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// A topic on a 3-broker cluster is spread over the brokers (one replica
// per partition); a client that knows one broker produces to and consumes
// from all of them, with its group coordinated wherever the group's
// __consumer_offsets partition is. With one broker killed, the partitions
// it leads are unavailable (there is no other replica yet) and the others
// keep working; after it restarts every acknowledged record is there.
func TestClusterSpreadsPartitions(t *testing.T) {
	c := cluster.Start(t, 3, "--broker-session-timeout-ms", "3000", "--broker-heartbeat-interval-ms", "500")
	seed := []string{c.Node(1).KafkaAddr()} // the client discovers the others
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := cluster.Ctx(t, 60*time.Second)
	if _, err := adm.CreateTopic(ctx, 9, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 3, 4, nil, "replicated"); err == nil || !strings.Contains(err.Error(), "INVALID_REPLICATION_FACTOR") {
		t.Fatalf("replication factor 4 on three brokers: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	var leaders map[int32]int32
	cluster.WaitFor(t, 10*time.Second, func() error {
		md, err := adm.Metadata(ctx, "orders")
		if err != nil {
			return err
		}
		if len(md.Brokers) != 3 {
			return fmt.Errorf("%d brokers in metadata", len(md.Brokers))
		}
		leaders = map[int32]int32{}
		per := map[int32]int{}
		for _, p := range md.Topics["orders"].Partitions {
			if p.Err != nil {
				return fmt.Errorf("partition %d: %v", p.Partition, p.Err)
			}
			leaders[p.Partition] = p.Leader
			per[p.Leader]++
		}
		if per[1] != 3 || per[2] != 3 || per[3] != 3 {
			return fmt.Errorf("leaders per broker %v, want 3 each", per)
		}
		return nil
	})

	want := map[string]bool{}
	produceAll(t, cl, "orders", "a", 900)
	for i := range 900 {
		want[fmt.Sprintf("a-%d", i)] = true
	}
	consumeGroup(t, seed, "g1", "orders", want)

	// kcat (librdkafka) sees the three brokers and the spread leaders.
	if kcat, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command(kcat, "-L", "-b", seed[0], "-t", "orders", "-m", "10").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		s := string(out)
		for id := 1; id <= 3; id++ {
			if !strings.Contains(s, fmt.Sprintf("broker %d at %s", id, c.Node(id).KafkaAddr())) {
				t.Fatalf("kcat -L does not list broker %d at %s:\n%s", id, c.Node(id).KafkaAddr(), s)
			}
		}
		for p, l := range leaders {
			if !strings.Contains(s, fmt.Sprintf("partition %d, leader %d,", p, l)) {
				t.Fatalf("kcat -L: partition %d not led by %d:\n%s", p, l, s)
			}
		}
	}

	// Broker 3 dies: partitions it leads go offline (no other replica), the
	// rest take produce.
	c.Node(3).Kill()
	cluster.WaitFor(t, 15*time.Second, func() error {
		md, err := adm.Metadata(ctx, "orders")
		if err != nil {
			return err
		}
		for _, p := range md.Topics["orders"].Partitions {
			if leaders[p.Partition] == 3 && p.Leader != -1 {
				return fmt.Errorf("partition %d still led by %d after broker 3 was fenced", p.Partition, p.Leader)
			}
		}
		return nil
	})
	// Metrics on a live broker count the fenced one.
	cluster.WaitFor(t, 5*time.Second, func() error {
		m := scrape(t, c.Node(1).HTTPAddr())
		if m["chronik_cluster_brokers"] != 2 || m["chronik_cluster_brokers_fenced"] != 1 {
			return fmt.Errorf("brokers %v, fenced %v", m["chronik_cluster_brokers"], m["chronik_cluster_brokers_fenced"])
		}
		if l := m["chronik_metadata_quorum_leader"]; l < 1 || l > 2 || m["chronik_metadata_commit_index"] < 1 {
			return fmt.Errorf("quorum leader %v, commit index %v", l, m["chronik_metadata_commit_index"])
		}
		return nil
	})
	pcl, err := kgo.NewClient(kgo.SeedBrokers(seed...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	var live []int32
	for p, l := range leaders {
		if l != 3 {
			live = append(live, p)
		}
	}
	for i, p := range live {
		v := fmt.Sprintf("b-%d", i)
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d (led by %d) with broker 3 down: %v", p, leaders[p], err)
		}
		want[v] = true
	}

	// Back: every record acknowledged before and during the outage is
	// there; the group resumes after its committed offsets.
	c.Node(3).Restart()
	after := map[string]bool{}
	for v := range want {
		if strings.HasPrefix(v, "b-") {
			after[v] = true
		}
	}
	consumeGroup(t, seed, "g1", "orders", after)
	consumeGroup(t, seed, "g2", "orders", want)

	// A clean stop fences the broker at once (no session timeout to wait
	// for): within a second the others report its partitions leaderless.
	c.Node(2).Stop()
	stopped := time.Now()
	cluster.WaitFor(t, 5*time.Second, func() error {
		got, err := partitionLeaders(t, c.Node(1).KafkaAddr(), "orders") // asked directly: no client retries
		if err != nil {
			return err
		}
		for p, l := range got {
			if leaders[p] == 2 && l != -1 {
				return fmt.Errorf("partition %d still led by %d", p, l)
			}
		}
		return nil
	})
	if d := time.Since(stopped); d > 2*time.Second {
		t.Errorf("partitions of the stopped broker leaderless only after %v (session timeout 3 s)", d)
	}
	c.Node(2).Restart()
	consumeGroup(t, seed, "g3", "orders", want)
}

// partitionLeaders returns orders' leaders as broker addr reports them.
func partitionLeaders(t *testing.T, addr, topic string) (map[int32]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := ask[*kmsg.MetadataResponse](t, addr, req)
	if err != nil {
		return nil, err
	}
	out := map[int32]int32{}
	for _, p := range resp.Topics[0].Partitions {
		out[p.Partition] = p.Leader
	}
	return out, nil
}

// A paused broker (SIGSTOP) and one cut off from the others are fenced
// after the session timeout, their partitions reported leaderless by the
// rest; resumed or healed, they heartbeat again, are unfenced and serve
// their partitions, every record acknowledged before still there. The
// quorum leader itself is among them: the others elect a new one.
func TestClusterPauseAndIsolate(t *testing.T) {
	c := cluster.Start(t, 3, "--broker-session-timeout-ms", "2000", "--broker-heartbeat-interval-ms", "300")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := cluster.Ctx(t, 90*time.Second)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "pi"); err != nil {
		t.Fatal(err)
	}
	var leaders map[int32]int32
	cluster.WaitFor(t, 10*time.Second, func() error {
		var err error
		leaders, err = partitionLeaders(t, c.Node(1).KafkaAddr(), "pi")
		if err == nil && len(leaders) != 3 {
			err = fmt.Errorf("%d partitions", len(leaders))
		}
		return err
	})
	produced := 0
	produce := func(what string) {
		t.Helper()
		for p := range int32(3) {
			v := fmt.Sprintf("%s-%d", what, p)
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pi", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("%s: partition %d: %v", what, p, err)
			}
			produced++
		}
	}
	produce("before")
	leader, err := agreedLeader(t, c, []int{1, 2, 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fault := range []string{"pause", "isolate"} {
		victim := leader // the quorum's leader first, so a controller change is part of it
		others := []int{}
		for id := 1; id <= 3; id++ {
			if id != victim {
				others = append(others, id)
			}
		}
		if fault == "pause" {
			c.Node(victim).Pause()
		} else {
			c.Isolate(victim)
		}
		cluster.WaitFor(t, 15*time.Second, func() error {
			l, err := agreedLeader(t, c, others, victim)
			if err != nil {
				return err
			}
			leader = l
			got, err := partitionLeaders(t, c.Node(others[0]).KafkaAddr(), "pi")
			if err != nil {
				return err
			}
			for p, l := range leaders {
				if l == int32(victim) && got[p] != -1 {
					return fmt.Errorf("%s: partition %d still led by %d", fault, p, got[p])
				}
			}
			return nil
		})
		if fault == "pause" {
			c.Node(victim).Resume()
		} else {
			c.Heal(victim)
		}
		cluster.WaitFor(t, 20*time.Second, func() error {
			for id := 1; id <= 3; id++ {
				got, err := partitionLeaders(t, c.Node(id).KafkaAddr(), "pi")
				if err != nil {
					return fmt.Errorf("broker %d: %w", id, err)
				}
				for p, l := range leaders {
					if got[p] != l {
						return fmt.Errorf("%s over: broker %d reports partition %d led by %d, want %d", fault, id, p, got[p], l)
					}
				}
			}
			return nil
		})
		produce("after-" + fault)
	}
	// Everything acknowledged is there, once.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.ConsumeTopics("pi"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < produced && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Fatalf("%s read twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	if len(seen) != produced {
		t.Fatalf("read %d of %d records", len(seen), produced)
	}
}

// scrape reads the plain (unlabelled) samples of a broker's /metrics.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = f
		}
	}
	return out
}
