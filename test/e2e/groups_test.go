package e2e

// Consumer groups and committed offsets with real clients: franz-go group
// consumers (eager and cooperative-sticky) under churn, kcat -G and Python
// confluent_kafka sharing a group with a kill -9 eviction, a broker restart
// with committed offsets intact, and bad input answered with Kafka's codes.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// groupsProduce writes n small records to topic (round-robin partitions).
func groupsProduce(t *testing.T, b *Broker, topic string, from, n int) {
	groupsProducePaced(t, b, topic, from, n, 1, 0)
}

// groupsProducePaced writes n records in chunks, pausing between chunks so
// that the records keep flowing while consumers join and leave.
func groupsProducePaced(t *testing.T, b *Broker, topic string, from, n, chunks int, pause time.Duration) {
	t.Helper()
	cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	ctx := Ctx(t, 60*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := from; i < from+n; i++ {
		if chunk := n / chunks; i > from && (i-from)%chunk == 0 {
			wg.Wait()
			time.Sleep(pause) // pacing, not waiting for state
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	cl.Close()
}

// churnTracker records what every member consumed and owned.
type churnTracker struct {
	mu         sync.Mutex
	seen       map[int32]map[int64]int // partition -> offset -> deliveries
	total      int
	owner      map[int32]string // partition -> member currently owning it
	violations []string
	maxGen     int32
	assigns    int
}

func (tr *churnTracker) assigned(member string, gen int32, ps []int32) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, p := range ps {
		if o, ok := tr.owner[p]; ok && o != member {
			tr.violations = append(tr.violations, fmt.Sprintf("partition %d assigned to %s in generation %d while %s still owns it", p, member, gen, o))
		}
		tr.owner[p] = member
	}
	tr.maxGen = max(tr.maxGen, gen)
	tr.assigns++
}

func (tr *churnTracker) revoked(member string, ps []int32) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, p := range ps {
		if tr.owner[p] == member {
			delete(tr.owner, p)
		}
	}
}

func (tr *churnTracker) consumed(r *kgo.Record) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := tr.seen[r.Partition]
	if m == nil {
		m = map[int64]int{}
		tr.seen[r.Partition] = m
	}
	if m[r.Offset] == 0 {
		tr.total++
	}
	m[r.Offset]++
}

// churnMember is one franz-go group consumer processing records in its own
// goroutine: poll, record, mark, allow rebalance. Marked offsets are
// committed on revoke, so a clean leave hands over exactly where it stopped.
type churnMember struct {
	name string
	cl   *kgo.Client
	done chan struct{}
	stop chan struct{}
}

func startChurnMember(t *testing.T, b *Broker, tr *churnTracker, name, group, topic string, balancer kgo.GroupBalancer) *churnMember {
	m := &churnMember{name: name, done: make(chan struct{}), stop: make(chan struct{})}
	onRevoke := func(ctx context.Context, cl *kgo.Client, rev map[string][]int32) {
		if err := cl.CommitMarkedOffsets(ctx); err != nil {
			t.Logf("%s: commit on revoke: %v", name, err)
		}
		tr.revoked(name, rev[topic])
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer), kgo.BlockRebalanceOnPoll(), kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(500*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second),
		kgo.RebalanceTimeout(10*time.Second), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, as map[string][]int32) {
			_, gen := cl.GroupMetadata()
			tr.assigned(name, gen, as[topic])
		}),
		kgo.OnPartitionsRevoked(onRevoke),
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

// leave stops polling and closes the client cleanly (commit on revoke, then
// LeaveGroup).
func (m *churnMember) leave() {
	close(m.stop)
	<-m.done
	m.cl.Close()
}

func TestGroupsChurn(t *testing.T) {
	b := StartBroker(t)
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200_000
			topic, group := "churn-"+tc.name, "g-"+tc.name
			clientsCreateTopic(t, clientsAdmin(t, b), topic, 8, nil)
			tr := &churnTracker{seen: map[int32]map[int64]int{}, owner: map[int32]string{}}
			progress := func() int { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.total }
			waitFor := func(count int) {
				CheckFor(t, 30*time.Second, func() error {
					if got := progress(); got < count {
						return fmt.Errorf("consumed %d of %d", got, count)
					}
					return nil
				})
			}
			produced := make(chan struct{})
			go func() { defer close(produced); groupsProducePaced(t, b, topic, 0, n, 100, 30*time.Millisecond) }()

			m1 := startChurnMember(t, b, tr, "m1", group, topic, tc.balancer)
			m2 := startChurnMember(t, b, tr, "m2", group, topic, tc.balancer)
			waitFor(n / 5)
			m3 := startChurnMember(t, b, tr, "m3", group, topic, tc.balancer)
			m4 := startChurnMember(t, b, tr, "m4", group, topic, tc.balancer)
			waitFor(2 * n / 5)
			m1.leave()
			waitFor(3 * n / 5)
			m2.leave()
			<-produced
			waitFor(n)
			m3.leave()
			m4.leave()

			tr.mu.Lock()
			defer tr.mu.Unlock()
			t.Logf("%d records, %d assignments, last generation %d", tr.total, tr.assigns, tr.maxGen)
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
			// The committed offsets are the log ends.
			offs, err := clientsAdmin(t, b).FetchOffsets(context.Background(), group)
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

// groupsDescribe returns each member's assigned partitions of topic, once
// the group is Stable.
func groupsAssignments(t *testing.T, adm *kadm.Client, group, topic string) (map[string][]int32, error) {
	t.Helper()
	ds, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		return nil, err
	}
	d := ds[group]
	if d.Err != nil {
		return nil, d.Err
	}
	if d.State != "Stable" {
		return nil, fmt.Errorf("group %s is %s", group, d.State)
	}
	out := map[string][]int32{}
	for _, m := range d.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, fmt.Errorf("member %s: assignment is not a consumer assignment", m.MemberID)
		}
		for _, at := range ca.Topics {
			if at.Topic == topic {
				ps := append([]int32(nil), at.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				out[m.ClientID+"/"+m.MemberID] = ps
			}
		}
		if _, ok := out[m.ClientID+"/"+m.MemberID]; !ok {
			out[m.ClientID+"/"+m.MemberID] = nil
		}
	}
	return out, nil
}

func TestGroupsKcatAndPythonShareAndEvict(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	const topic, group = "shared", "mixed"
	clientsCreateTopic(t, adm, topic, 4, nil)

	kcat := exec.Command("kcat", "-b", b.Addr, "-G", group, "-X", "session.timeout.ms=6000",
		"-X", "heartbeat.interval.ms=500", "-X", "client.id=kcat", "-o", "beginning", "-q", "-f", "%p|%o\n", topic)
	kcat.Stdout, kcat.Stderr = nil, nil
	if err := kcat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kcat.Process.Kill(); kcat.Wait() })

	py := exec.Command(clientsPythonBin, "-u", "-B", filepath.Join("python", "groups_consumer.py"),
		"--bootstrap", b.Addr, "--topic", topic, "--group", group)
	stdin, _ := py.StdinPipe()
	stdout, _ := py.StdoutPipe()
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); py.Process.Kill(); py.Wait() })
	var pyMu sync.Mutex
	pySeen := map[int32]int{}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				P *int32 `json:"p"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.P != nil {
				pyMu.Lock()
				pySeen[*ev.P]++
				pyMu.Unlock()
			}
		}
	}()

	// Both share the four partitions.
	CheckFor(t, 30*time.Second, func() error {
		as, err := groupsAssignments(t, adm, group, topic)
		if err != nil {
			return err
		}
		if len(as) != 2 {
			return fmt.Errorf("%d members: %v", len(as), as)
		}
		seen := map[int32]bool{}
		for m, ps := range as {
			if len(ps) == 0 {
				return fmt.Errorf("member %s has no partition: %v", m, as)
			}
			for _, p := range ps {
				if seen[p] {
					return fmt.Errorf("partition %d assigned twice: %v", p, as)
				}
				seen[p] = true
			}
		}
		if len(seen) != 4 {
			return fmt.Errorf("partitions assigned: %v", as)
		}
		return nil
	})

	// kill -9 kcat: after its session timeout the Python consumer owns all.
	kcat.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	CheckFor(t, 30*time.Second, func() error {
		as, err := groupsAssignments(t, adm, group, topic)
		if err != nil {
			return err
		}
		if len(as) != 1 {
			return fmt.Errorf("%d members: %v", len(as), as)
		}
		for _, ps := range as {
			if len(ps) != 4 {
				return fmt.Errorf("survivor owns %v", ps)
			}
		}
		return nil
	})
	if d := time.Since(killed); d < 5*time.Second {
		t.Fatalf("killed member evicted after %v, before its 6 s session timeout", d)
	}
	// And it consumes from every partition.
	groupsProduce(t, b, topic, 0, 400)
	CheckFor(t, 30*time.Second, func() error {
		pyMu.Lock()
		defer pyMu.Unlock()
		if len(pySeen) != 4 {
			return fmt.Errorf("python consumed from partitions %v", pySeen)
		}
		return nil
	})
}

func TestGroupsBrokerRestartKeepsOffsets(t *testing.T) {
	b := StartBroker(t)
	const topic, group, n = "restart", "g-restart", 2000
	clientsCreateTopic(t, clientsAdmin(t, b), topic, 3, nil)
	groupsProduce(t, b, topic, 0, n)

	consume := func(b *Broker, want int) map[string]bool {
		cl := b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.HeartbeatInterval(200*time.Millisecond))
		got := map[string]bool{}
		ctx := Ctx(t, 30*time.Second)
		for len(got) < want {
			fs := cl.PollRecords(ctx, want-len(got))
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", len(got), want)
			}
			fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		cl.Close()
		return got
	}
	first := consume(b, n/2)
	before, err := clientsAdmin(t, b).FetchOffsets(context.Background(), group)
	if err != nil || before.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, before.Error())
	}

	b.Kill() // a crash: committed offsets were fsynced before their acks
	b2 := StartBrokerIn(t, b.DataDir)
	after, err := clientsAdmin(t, b2).FetchOffsets(context.Background(), group)
	if err != nil || after.Error() != nil {
		t.Fatalf("fetch offsets after restart: %v %v", err, after.Error())
	}
	var sum int64
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At != o.At {
			t.Errorf("%s-%d committed %d before restart, %v after", o.Topic, o.Partition, o.At, a.At)
		}
		sum += o.At
	})
	if int(sum) != len(first) {
		t.Fatalf("committed offsets sum to %d, consumed %d", sum, len(first))
	}
	// The group re-forms and resumes exactly where it committed.
	rest := consume(b2, n-len(first))
	for v := range rest {
		if first[v] {
			t.Fatalf("record %s consumed again after restart", v)
		}
	}
}

// groupsRaw sends req to the broker and returns the response.
func groupsRaw[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(context.Background(), req)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	return resp.(R)
}

func TestGroupsBadInput(t *testing.T) {
	b := StartBroker(t)
	cl := b.Client(t)
	adm := kadm.NewClient(cl)
	clientsCreateTopic(t, adm, "bad", 2, nil)
	// OffsetCommit v10 names topics by id; these raw commits name them, so
	// they go at Kafka 4.0's versions (v9).
	named := b.Client(t, kgo.MaxVersions(kversion.V4_0_0()))

	commit := func(group string, gen int32, member string, topic string, p int32, meta string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, gen, member
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, 5, &meta
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := groupsRaw[*kmsg.OffsetCommitResponse](t, named, req)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// commitByID is the v10 form.
	commitByID := func(group string, id [16]byte, p int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.TopicID = id
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, 6
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := groupsRaw[*kmsg.OffsetCommitResponse](t, cl, req)
		if resp.Version < 10 {
			t.Fatalf("OffsetCommit sent at v%d, want v10", resp.Version)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	expect := func(what string, got int16, want *kerr.Error) { t.Helper(); expectCode(t, what, got, want) }
	expect("unknown topic", commit("standalone", -1, "", "nope", 0, ""), kerr.UnknownTopicOrPartition)
	expect("unknown partition", commit("standalone", -1, "", "bad", 9, ""), kerr.UnknownTopicOrPartition)
	expect("metadata too large", commit("standalone", -1, "", "bad", 0, strings.Repeat("x", 4097)), kerr.OffsetMetadataTooLarge)
	expect("standalone commit", commit("standalone", -1, "", "bad", 1, "ok"), nil)
	offs, err := adm.FetchOffsets(context.Background(), "standalone")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs["bad"]) != 1 || offs["bad"][1].At != 5 || offs["bad"][1].Metadata != "ok" {
		t.Fatalf("after bad commits, offsets are %+v; want only bad-1 at 5", offs)
	}
	tds, err := adm.ListTopics(context.Background(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	expect("v10 unknown topic id", commitByID("standalone", [16]byte{1, 2, 3}, 0), kerr.UnknownTopicID)
	expect("v10 commit by id", commitByID("standalone", tds["bad"].ID, 0), nil)
	if offs, err = adm.FetchOffsets(context.Background(), "standalone"); err != nil || offs["bad"][0].At != 6 {
		t.Fatalf("after a commit by id, offsets are %+v (%v); want bad-0 at 6", offs, err)
	}

	// A member of a group: wrong generation, unknown member.
	join := func(member string, instance *string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID = "members", member
		if instance != nil {
			req.Group = "statics"
		}
		req.InstanceID = instance
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = 10000, 5000, "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		return groupsRaw[*kmsg.JoinGroupResponse](t, cl, req)
	}
	r := join("", nil)
	expect("first join", r.ErrorCode, kerr.MemberIDRequired)
	r = join(r.MemberID, nil)
	expect("second join", r.ErrorCode, nil)
	if r.LeaderID != r.MemberID || r.Generation != 1 || len(r.Members) != 1 {
		t.Fatalf("join: leader %s member %s generation %d members %d", r.LeaderID, r.MemberID, r.Generation, len(r.Members))
	}
	member := r.MemberID
	sy := kmsg.NewPtrSyncGroupRequest()
	sy.Group, sy.Generation, sy.MemberID = "members", r.Generation, member
	sa := kmsg.NewSyncGroupRequestGroupAssignment()
	sa.MemberID, sa.MemberAssignment = member, []byte("assignment")
	sy.GroupAssignment = append(sy.GroupAssignment, sa)
	syr := groupsRaw[*kmsg.SyncGroupResponse](t, cl, sy)
	expect("sync", syr.ErrorCode, nil)
	if string(syr.MemberAssignment) != "assignment" {
		t.Fatalf("sync: assignment %q", syr.MemberAssignment)
	}
	expect("wrong generation", commit("members", 7, member, "bad", 0, ""), kerr.IllegalGeneration)
	expect("unknown member", commit("members", 1, "someone", "bad", 0, ""), kerr.UnknownMemberID)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "members", 7, member
	expect("heartbeat wrong generation", groupsRaw[*kmsg.HeartbeatResponse](t, cl, hb).ErrorCode, kerr.IllegalGeneration)
	expect("standalone commit into a live group", commit("members", -1, "", "bad", 0, ""), kerr.UnknownMemberID)
	if o, _ := adm.FetchOffsets(context.Background(), "members"); len(o) != 0 {
		t.Fatalf("rejected commits changed offsets: %+v", o)
	}

	// Duplicate static instance ids: the second replaces the first, which
	// is then fenced.
	inst := "instance-1"
	s1 := join("", &inst)
	expect("static join", s1.ErrorCode, nil)
	s2 := join("", &inst)
	expect("static replacement", s2.ErrorCode, nil)
	if s1.MemberID == s2.MemberID {
		t.Fatalf("replacement kept member id %s", s1.MemberID)
	}
	hb = kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = "statics", s2.Generation, s1.MemberID, &inst
	expect("fenced heartbeat", groupsRaw[*kmsg.HeartbeatResponse](t, cl, hb).ErrorCode, kerr.FencedInstanceID)
	expect("fenced join", join(s1.MemberID, &inst).ErrorCode, kerr.FencedInstanceID)

	// ListGroups and DeleteGroups.
	lg, err := adm.ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg["standalone"]; !ok {
		t.Fatalf("ListGroups: %v", lg.Groups())
	}
	dr, err := adm.DeleteGroups(context.Background(), "standalone", "members", "never")
	if err != nil {
		t.Fatal(err)
	}
	if dr["standalone"].Err != nil || dr["members"].Err != kerr.NonEmptyGroup || dr["never"].Err != kerr.GroupIDNotFound {
		t.Fatalf("DeleteGroups: standalone %v, members %v, never %v", dr["standalone"].Err, dr["members"].Err, dr["never"].Err)
	}
	if o, _ := adm.FetchOffsets(context.Background(), "standalone"); len(o) != 0 {
		t.Fatalf("deleted group still has offsets: %+v", o)
	}
}

// poll consumes until stop: every record is counted, marked for commit, and
// rebalances are allowed between polls (the members block them on revoke).
func (m *churnMember) poll(tr *churnTracker) {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := m.cl.PollRecords(ctx, 1000)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			tr.consumed(r)
			m.cl.MarkCommitRecords(r)
		})
		m.cl.AllowRebalance()
	}
}
