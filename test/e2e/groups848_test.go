package e2e

// The KIP-848 consumer group protocol with franz-go's server-side balancer
// (ConsumerGroupHeartbeat): members join and leave while records flow;
// every record is consumed exactly once with commits and clean shutdowns,
// and no partition is owned by two members at once.

import (
	"context"
	"fmt"
	"strings"
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
