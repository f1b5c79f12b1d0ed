package e2e

// The KIP-848 consumer group protocol with franz-go's server-side balancer
// (ConsumerGroupHeartbeat): members join and leave while records flow;
// every record is consumed exactly once with commits and clean shutdowns,
// and no partition is owned by two members at once.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// start848Member is startChurnMember's consumer-protocol twin: the broker
// assigns ("range" with kgo.RangeBalancer, "uniform" with StickyBalancer).
func start848Member(t *testing.T, b *Broker, tr *churnTracker, name, group, topic string, balancer kgo.GroupBalancer) *churnMember {
	m := &churnMember{name: name, done: make(chan struct{}), stop: make(chan struct{})}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID(name), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer), kgo.ServerSideBalancer(), kgo.BlockRebalanceOnPoll(), kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(500*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, as map[string][]int32) {
			_, epoch := cl.GroupMetadata()
			tr.assigned(name, epoch, as[topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, rev map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				t.Logf("%s: commit on revoke: %v", name, err)
			}
			tr.revoked(name, rev[topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			tr.revoked(name, lost[topic])
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go m.poll(tr)
	return m
}

func TestGroups848Churn(t *testing.T) {
	b := StartBroker(t)
	for _, tc := range []struct {
		name, assignor string
		balancer       kgo.GroupBalancer
	}{
		{"uniform", "uniform", kgo.StickyBalancer()},
		{"range", "range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200_000
			topic, group := "churn848-"+tc.name, "g848-"+tc.name
			adm := clientsAdmin(t, b)
			clientsCreateTopic(t, adm, topic, 6, nil)
			tr := &churnTracker{seen: map[int32]map[int64]int{}, owner: map[int32]string{}}
			progress := func() int { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.total }
			waitFor := func(count int) {
				CheckFor(t, 60*time.Second, func() error {
					if got := progress(); got < count {
						return fmt.Errorf("consumed %d of %d", got, count)
					}
					return nil
				})
			}
			produced := make(chan struct{})
			go func() { defer close(produced); groupsProducePaced(t, b, topic, 0, n, 100, 50*time.Millisecond) }()

			m1 := start848Member(t, b, tr, "m1", group, topic, tc.balancer)
			m2 := start848Member(t, b, tr, "m2", group, topic, tc.balancer)
			waitFor(n / 4)
			m3 := start848Member(t, b, tr, "m3", group, topic, tc.balancer)
			// The group is a consumer group, listed and described as such.
			CheckFor(t, 30*time.Second, func() error { return check848Group(b, group, tc.assignor, 3) })
			waitFor(n / 2)
			m1.leave()
			waitFor(3 * n / 4)
			<-produced
			m2.leave()
			waitFor(n)
			m3.leave()

			tr.mu.Lock()
			defer tr.mu.Unlock()
			t.Logf("%d records, %d assignments, last member epoch %d", tr.total, tr.assigns, tr.maxGen)
			if len(tr.violations) > 0 {
				t.Fatalf("partitions owned twice:\n%s", strings.Join(tr.violations, "\n"))
			}
			dups := 0
			for p, offs := range tr.seen {
				for o, c := range offs {
					if c > 1 {
						dups++
						if dups < 5 {
							t.Errorf("partition %d offset %d consumed %d times", p, o, c)
						}
					}
				}
			}
			if tr.total != n || dups > 0 {
				t.Fatalf("consumed %d distinct records of %d, %d duplicates", tr.total, n, dups)
			}
			offs, err := adm.FetchOffsets(context.Background(), group)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			if sum != n {
				t.Fatalf("committed offsets sum to %d, want %d", sum, n)
			}
		})
	}
}

// check848Group: ListGroups shows type "consumer", ConsumerGroupDescribe
// shows a Stable group with the assignor and members, every partition
// assigned once.
func check848Group(b *Broker, group, assignor string, members int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"consumer"}
	lresp, err := lreq.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	found := false
	for _, g := range lresp.Groups {
		found = found || (g.Group == group && g.GroupType == "consumer")
	}
	if !found {
		return fmt.Errorf("group %s not listed as a consumer group: %+v", group, lresp.Groups)
	}
	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.Groups = []string{group}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	d := dresp.Groups[0]
	if d.ErrorCode != 0 || d.State != "Stable" || d.AssignorName != assignor || len(d.Members) != members {
		return fmt.Errorf("describe: error %d state %s assignor %s, %d members", d.ErrorCode, d.State, d.AssignorName, len(d.Members))
	}
	owned := map[string]string{}
	for _, m := range d.Members {
		for _, tp := range m.Assignment.TopicPartitions {
			for _, p := range tp.Partitions {
				k := fmt.Sprintf("%s/%d", tp.Topic, p)
				if o, ok := owned[k]; ok {
					return fmt.Errorf("%s assigned to %s and %s", k, o, m.MemberID)
				}
				owned[k] = m.MemberID
			}
		}
	}
	if len(owned) != 6 {
		return fmt.Errorf("%d partitions assigned, want 6", len(owned))
	}
	return nil
}

// TestGroups848Regex: a franz-go regex consumer (SubscribedTopicRegex) gets
// every matching topic, including one created after it joined, and
// nothing else.
func TestGroups848Regex(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	clientsCreateTopic(t, adm, "rx-a", 2, nil)
	clientsCreateTopic(t, adm, "other", 1, nil)
	groupsProduce(t, b, "rx-a", 0, 100)
	groupsProduce(t, b, "other", 0, 10)
	cl := b.Client(t, kgo.ConsumerGroup("g848-regex"), kgo.ConsumeRegex(), kgo.ConsumeTopics("^rx-.*"),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(500*time.Millisecond), kgo.MetadataMaxAge(time.Second),
		kgo.FetchMaxWait(100*time.Millisecond))
	counts := map[string]int{}
	created := false
	ctx := Ctx(t, 60*time.Second)
	for counts["rx-a"] < 100 || counts["rx-b"] < 50 {
		if ctx.Err() != nil {
			t.Fatalf("consumed %v", counts)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { counts[r.Topic]++ })
		if !created && counts["rx-a"] >= 100 {
			created = true
			clientsCreateTopic(t, adm, "rx-b", 1, nil)
			groupsProduce(t, b, "rx-b", 0, 50)
		}
	}
	if counts["other"] != 0 || counts["rx-a"] != 100 || counts["rx-b"] != 50 {
		t.Fatalf("consumed %v", counts)
	}
}

// TestGroups848SurvivesBrokerRestart: a Stable KIP-848 group (3 franz-go
// consumers with the server-side balancer) goes on after a broker restart
// on the same port: the broker restored its epochs, members and assignments
// from __consumer_offsets, so every member keeps its member epoch, no
// assignment or revocation callback runs, and no record is consumed twice.
func TestGroups848SurvivesBrokerRestart(t *testing.T) {
	hb := []string{"--group-consumer-heartbeat-interval-ms", "300"}
	b := StartBroker(t, hb...)
	_, port, _ := strings.Cut(b.Addr, ":")
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 3*time.Minute)
	const topic, group, parts, per = "restart-848", "restart-848-group", 6, 300
	clientsCreateTopic(t, adm, topic, parts, nil)
	produce := func(b *Broker, tag string) {
		cl := b.Client(t, kgo.DefaultProduceTopic(topic))
		rs := make([]*kgo.Record, per)
		for i := range rs {
			rs[i] = &kgo.Record{Value: []byte(fmt.Sprint(tag, i))}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	produce(b, "a")

	var mu sync.Mutex
	seen := map[string]int{}
	var restarted bool
	var afterRestart []string
	cls := make([]*kgo.Client, 3)
	for i := range cls {
		callback := func(what string) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
				// Before the restart, while the group forms, the first member
				// owns every partition and may consume the whole topic
				// before giving most of it up: commit what it polled (a
				// revoke waits for AllowRebalance after the poll is counted)
				// so the next owner starts there. franz-go commits on revoke
				// itself only when no OnPartitionsRevoked is set.
				if what == "revoked" {
					if err := cl.CommitUncommittedOffsets(ctx); err != nil {
						t.Logf("consumer %d: commit on revoke: %v", i, err)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if restarted {
					afterRestart = append(afterRestart, fmt.Sprint(what, " ", i, " ", m))
				}
			}
		}
		cls[i] = b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID(fmt.Sprint("c", i)),
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()), kgo.BlockRebalanceOnPoll(),
			kgo.AutoCommitInterval(200*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(callback("assigned")),
			kgo.OnPartitionsRevoked(callback("revoked")),
			kgo.OnPartitionsLost(callback("lost")),
		)
	}
	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	for _, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				cl.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
				cl.AllowRebalance() // what was polled is counted: revoke may commit it
			}
		}()
	}
	t.Cleanup(func() { stopPolling(); wg.Wait() })
	epochs := func() ([]int32, error) {
		out := make([]int32, len(cls))
		for i, cl := range cls {
			if _, out[i] = cl.GroupMetadata(); out[i] <= 0 {
				return nil, fmt.Errorf("consumer %d at epoch %d", i, out[i])
			}
		}
		return out, nil
	}
	var before []int32
	CheckFor(t, 60*time.Second, func() error {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n < per {
			return fmt.Errorf("%d of %d records", n, per)
		}
		if err := check848GroupOf(b, group, parts, 3); err != nil {
			return err
		}
		var err error
		before, err = epochs()
		return err
	})
	time.Sleep(600 * time.Millisecond) // every consumer commits what it has

	b.Stop()
	mu.Lock()
	restarted = true
	mu.Unlock()
	b = StartBrokerIn(t, b.DataDir, append([]string{"--kafka-port", port}, hb...)...)
	if !strings.Contains(b.Logs(), `"groups_restored":1`) {
		t.Fatalf("the broker did not restore the group:\n%s", tail(b.Logs(), 40))
	}
	produce(b, "b")
	CheckFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 2*per {
			return fmt.Errorf("%d of %d records after the restart", len(seen), 2*per)
		}
		return nil
	})
	time.Sleep(time.Second) // heartbeats after the restart
	if err := check848GroupOf(b, group, parts, 3); err != nil {
		t.Fatal(err)
	}
	after, err := epochs()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("member epochs %v after the restart, %v before", after, before)
	}
	if len(afterRestart) > 0 {
		t.Fatalf("rebalance callbacks after the restart: %v", afterRestart)
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %s consumed %d times", v, c)
		}
	}
}

// check848GroupOf: ConsumerGroupDescribe shows a Stable group of n members
// at one epoch with every partition of the group's topic assigned once.
func check848GroupOf(b *Broker, group string, parts, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	d := resp.Groups[0]
	if d.ErrorCode != 0 || d.State != "Stable" || len(d.Members) != n {
		return fmt.Errorf("describe: error %d state %s, %d members", d.ErrorCode, d.State, len(d.Members))
	}
	owned := 0
	for _, m := range d.Members {
		if m.MemberEpoch != d.Epoch {
			return fmt.Errorf("member %s at epoch %d, group at %d", m.MemberID, m.MemberEpoch, d.Epoch)
		}
		for _, tp := range m.Assignment.TopicPartitions {
			owned += len(tp.Partitions)
		}
	}
	if owned != parts {
		return fmt.Errorf("%d partitions assigned, want %d", owned, parts)
	}
	return nil
}
