package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions whose partitions are led by several brokers: the
// coordinator (wherever the transactional id's __transaction_state
// partition is) has the other leaders write their markers
// (WriteTxnMarkers), and each leader checks a transactional produce with
// the coordinator (AddPartitionsToTxn). Committed records are read once by
// read_committed consumers, aborted ones never; under transaction version 1
// (AddPartitionsToTxn from the client, verification by the leaders) and 2
// (partitions added by the leaders).
func TestClusterTransactionsAcrossBrokers(t *testing.T) {
	for _, tv := range []string{"1", "2"} {
		t.Run("transaction-version-"+tv, func(t *testing.T) {
			c := cluster.Start(t, 3, "--transaction-version", tv)
			seeds := c.Bootstrap()
			adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			ctx := cluster.Ctx(t, 60*time.Second)
			if _, err := kadm.NewClient(adm).CreateTopic(ctx, 6, 1, nil, "tx"); err != nil {
				t.Fatal(err)
			}
			// Several transactional ids, so coordinators sit on different
			// brokers; every transaction writes to all six partitions.
			want := map[string]bool{}
			for n := range 4 {
				id := fmt.Sprintf("tx-%d", n)
				p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
					kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(20*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for round := range 3 {
					if err := p.BeginTransaction(); err != nil {
						t.Fatal(err)
					}
					commit := round != 1
					for part := range int32(6) {
						v := fmt.Sprintf("%s-r%d-p%d", id, round, part)
						if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
							t.Fatalf("%s round %d partition %d: %v", id, round, part, err)
						}
						if commit {
							want[v] = true
						}
					}
					if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
						t.Fatalf("%s round %d end (commit %v): %v", id, round, commit, err)
					}
				}
				p.Close()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			seen := map[string]bool{}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			for len(seen) < len(want) && rctx.Err() == nil {
				cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					if !want[v] {
						t.Fatalf("read_committed consumer read %q (aborted or unknown)", v)
					}
					if seen[v] {
						t.Fatalf("%q read twice", v)
					}
					seen[v] = true
				})
			}
			if len(seen) != len(want) {
				t.Fatalf("read %d of %d committed records", len(seen), len(want))
			}
			// The last stable offset passed every transaction: nothing stays
			// open on any broker.
			offs, err := kadm.NewClient(adm).ListEndOffsets(ctx, "tx")
			if err != nil {
				t.Fatal(err)
			}
			committed, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, "tx") // read_committed LSO
			if err != nil {
				t.Fatal(err)
			}
			offs.Each(func(o kadm.ListedOffset) {
				lso, _ := committed.Lookup("tx", o.Partition)
				if lso.Offset != o.Offset {
					t.Errorf("partition %d: end %d, last stable %d: a transaction is still open", o.Partition, o.Offset, lso.Offset)
				}
			})
		})
	}
}

// Offsets in a transaction whose group is coordinated by another broker
// than the transactional id, as Kafka keeps every transactional offset: the
// group's broker writes them to its __consumer_offsets partition in the
// producer's transaction and they count when the coordinator's COMMIT
// marker lands there. Staged offsets are unstable (require_stable), an
// abort drops them, and a restart of the group's broker while they are
// staged or after the commit keeps exactly what was committed.
func TestClusterTxnOffsetsAcrossBrokers(t *testing.T) {
	for _, tv := range []string{"1", "2"} {
		t.Run("transaction-version-"+tv, func(t *testing.T) { txnOffsetsAcrossBrokers(t, tv) })
	}
}

func txnOffsetsAcrossBrokers(t *testing.T, tv string) {
	c := cluster.Start(t, 3, "--transaction-version", tv, "--broker-session-timeout-ms", "3000")
	seeds := c.Bootstrap()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := cluster.Ctx(t, 90*time.Second)
	kadmc := kadm.NewClient(adm)
	if _, err := kadmc.CreateTopic(ctx, 3, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	coordOf := func(group bool, key string) int32 {
		t.Helper()
		var id int32
		cluster.WaitFor(t, 10*time.Second, func() error {
			var rs kadm.FindCoordinatorResponses
			if group {
				rs = kadmc.FindGroupCoordinators(ctx, key)
			} else {
				rs = kadmc.FindTxnCoordinators(ctx, key)
			}
			if err := rs.Error(); err != nil {
				return err
			}
			id = rs[key].NodeID
			return nil
		})
		return id
	}
	txnID := "etl"
	tc := coordOf(false, txnID)
	var group string
	var gc int32
	for i := range 100 {
		g := fmt.Sprintf("g%d", i)
		if gc = coordOf(true, g); gc != tc {
			group = g
			break
		}
	}
	if group == "" {
		t.Fatal("no group with a coordinator other than the transaction's")
	}
	var topicID [16]byte
	cluster.WaitFor(t, 10*time.Second, func() error {
		for id := 1; id <= 3; id++ { // every broker knows the topic
			if got, err := partitionLeaders(t, c.Node(id).KafkaAddr(), "in"); err != nil || len(got) != 3 {
				return fmt.Errorf("broker %d: %d partitions, %v", id, len(got), err)
			}
		}
		md, err := kadmc.Metadata(ctx, "in")
		if err == nil {
			topicID = md.Topics["in"].ID
		}
		return err
	})
	p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("in"),
		kgo.TransactionTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fetch := func(stable bool) (int64, error) {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.TopicID, rt.Partitions = "in", topicID, []int32{0}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
		req.Group, req.Topics = group, []kmsg.OffsetFetchRequestTopic{{Topic: "in", Partitions: []int32{0}}}
		req.RequireStable = stable
		resp, err := req.RequestWith(ctx, adm)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Groups) > 0 {
			sp := resp.Groups[0].Topics[0].Partitions[0]
			return sp.Offset, kerr.ErrorForCode(sp.ErrorCode)
		}
		sp := resp.Topics[0].Partitions[0]
		return sp.Offset, kerr.ErrorForCode(sp.ErrorCode)
	}
	// stage begins a transaction with one record and stages offset off.
	stage := func(off int64) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		pid, epoch, err := p.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tv == "1" {
			ao := kmsg.NewPtrAddOffsetsToTxnRequest()
			ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = txnID, pid, epoch, group
			aor, err := ao.RequestWith(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if e := kerr.ErrorForCode(aor.ErrorCode); e != nil {
				t.Fatalf("AddOffsetsToTxn (group on broker %d, transaction on %d): %v", gc, tc, e)
			}
		}
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Generation = txnID, pid, epoch, group, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = "in", topicID
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, off, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if e := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); e != nil {
			t.Fatalf("TxnOffsetCommit (group on broker %d, transaction on %d): %v", gc, tc, e)
		}
		if _, err := fetch(true); err != kerr.UnstableOffsetCommit {
			t.Fatalf("require_stable with offset %d staged: %v, want UNSTABLE_OFFSET_COMMIT", off, err)
		}
	}
	// EndTxn answers once the commit is decided; a marker the
	// coordinator could not write at once (the group's broker just
	// restarted) follows within moments, and until then require_stable
	// answers UNSTABLE_OFFSET_COMMIT, which clients retry.
	want := func(what string, off int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := fetch(true)
			if err == kerr.UnstableOffsetCommit && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil || got != off {
				t.Fatalf("%s: committed offset %d (%v), want %d", what, got, err, off)
			}
			return
		}
	}
	stage(10)
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	want("after commit", 10)
	stage(20)
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	want("after abort", 10)
	// Staged, then the group's broker restarts: the staged offsets are
	// replayed as pending and count when the commit comes.
	stage(30)
	c.Node(int(gc)).Stop()
	c.Node(int(gc)).Restart()
	if _, err := fetch(true); err != kerr.UnstableOffsetCommit {
		t.Fatalf("after the group's broker restarted with offset 30 staged: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	want("commit after the restart", 30)
	c.Node(int(gc)).Stop()
	c.Node(int(gc)).Restart()
	want("restart after the commit", 30)
}

// Consume-transform-produce with franz-go's GroupTransactSession on three
// brokers, the input, the output, the group's coordinator and the
// transaction's coordinator spread over them (group and transactional id
// on different brokers): every input record reaches the output exactly
// once (read_committed) and the group's committed offsets end at the input's
// end.
func TestClusterConsumeTransformProduce(t *testing.T) {
	const n = 600
	c := cluster.Start(t, 3)
	seeds := c.Bootstrap()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	kadmc := kadm.NewClient(adm)
	ctx := cluster.Ctx(t, 120*time.Second)
	for _, topic := range []string{"src", "dst"} {
		if _, err := kadmc.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := adm.ProduceSync(ctx, &kgo.Record{Topic: "src", Partition: int32(i % 3), Value: []byte(fmt.Sprintf("in-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txnID := "ctp"
	tc := kadmc.FindTxnCoordinators(ctx, txnID)[txnID].NodeID
	group := ""
	for i := range 100 {
		g := fmt.Sprintf("ctp-group-%d", i)
		if r := kadmc.FindGroupCoordinators(ctx, g)[g]; r.Err == nil && r.NodeID != tc {
			group = g
			break
		}
	}
	if group == "" {
		t.Fatal("no group coordinated away from the transaction")
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(seeds...), kgo.TransactionalID(txnID),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics("src"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("dst"),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < n && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollFetches(pctx)
		cancel()
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Partition: (r.Partition + 1) % 3, Value: append([]byte("out-"), r.Value...)}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			done += len(recs)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("dst"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for len(seen) < n && rctx.Err() == nil {
		cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Fatalf("%s in the output twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	for i := range n {
		if v := fmt.Sprintf("out-in-%d", i); !seen[v] {
			t.Fatalf("%s missing from the output (%d of %d there)", v, len(seen), n)
		}
	}
	offs, err := kadmc.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for p := range int32(3) {
		o, ok := offs.Lookup("src", p)
		if !ok {
			t.Fatalf("no committed offset for src/%d", p)
		}
		total += o.At
	}
	if total != n {
		t.Fatalf("committed offsets sum to %d, want %d", total, n)
	}
}

// A transaction over partitions of three brokers survives kill -9 of a
// partition leader before the commit (the commit is decided and answered;
// its markers, and the producer's next transaction, wait until that broker
// is back) and kill -9 of the
// transaction's coordinator after a commit is decided (its restart
// finishes the commit on every broker): read_committed consumers see
// every committed record once and nothing aborted.
func TestClusterTxnSurvivesBrokerKills(t *testing.T) {
	c := cluster.Start(t, 3, "--broker-session-timeout-ms", "3000")
	seeds := c.Bootstrap()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	kadmc := kadm.NewClient(adm)
	ctx := cluster.Ctx(t, 150*time.Second)
	if _, err := kadmc.CreateTopic(ctx, 3, 1, nil, "tk"); err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int32{}
	cluster.WaitFor(t, 10*time.Second, func() error { // every broker knows the topic
		for id := 1; id <= 3; id++ {
			got, err := partitionLeaders(t, c.Node(id).KafkaAddr(), "tk")
			if err != nil {
				return err
			}
			if len(got) != 3 {
				return fmt.Errorf("broker %d knows %d partitions", id, len(got))
			}
			leaders = got
		}
		return nil
	})
	txnID := "tk-producer"
	tc := kadmc.FindTxnCoordinators(ctx, txnID)[txnID].NodeID
	victim := int32(-1) // a partition leader that is not the coordinator
	for _, l := range leaders {
		if l != tc {
			victim = l
		}
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("tk"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(90*time.Second),
		kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := map[string]bool{}
	produce := func(name string, parts ...int32) error {
		for _, part := range parts {
			v := fmt.Sprintf("%s-p%d", name, part)
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			want[v] = true
		}
		return nil
	}
	txn := func(name string) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := produce(name, 0, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	txnState := func() string {
		t.Helper()
		var state string
		cluster.WaitFor(t, 10*time.Second, func() error {
			d, err := kadmc.DescribeTransactions(ctx, txnID)
			if err != nil {
				return err
			}
			dt, ok := d[txnID]
			if !ok || dt.Err != nil {
				return fmt.Errorf("describe %s: %v", txnID, dt.Err)
			}
			state = dt.State
			return nil
		})
		return state
	}
	live := int32(-1) // a partition whose leader is not the victim
	for part, l := range leaders {
		if l != victim {
			live = part
		}
	}

	// 1. A partition leader dies before the commit. The commit is decided
	// once PrepareCommit is durable, so EndTxn answers (as Kafka's does);
	// the coordinator keeps the transaction PrepareCommit until that
	// broker is back and has its marker, and the producer's next
	// transaction waits for it (CONCURRENT_TRANSACTIONS, retried), even on
	// a partition whose leader is up.
	txn("a")
	c.Node(int(victim)).Kill()
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit with broker %d down: %v", victim, err)
	}
	if st := txnState(); st != "PrepareCommit" {
		t.Fatalf("transaction %s with broker %d down, want PrepareCommit", st, victim)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	next := make(chan error, 1)
	go func() { next <- produce("b", live) }()
	select {
	case err := <-next:
		t.Fatalf("the next transaction produced (%v) before the last one's markers were written", err)
	case <-time.After(3 * time.Second):
	}
	c.Node(int(victim)).Restart()
	if err := <-next; err != nil {
		t.Fatalf("next transaction after broker %d came back: %v", victim, err)
	}
	if st := txnState(); st != "Ongoing" {
		t.Fatalf("transaction %s after broker %d came back, want Ongoing", st, victim)
	}
	for part := range int32(3) {
		if part != live {
			if err := produce("b", part); err != nil {
				t.Fatal(err)
			}
		}
	}

	// 2. The coordinator dies after a commit is decided: an aborted
	// transaction first, then one committed and killed right after.
	for part := range int32(3) {
		delete(want, fmt.Sprintf("b-p%d", part))
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	txn("c")
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	c.Node(int(tc)).Kill()
	c.Node(int(tc)).Restart()

	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("tk"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(seen) < len(want) && rctx.Err() == nil {
		cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !want[v] || seen[v] {
				t.Fatalf("read %q (aborted, unknown or twice)", v)
			}
			seen[v] = true
		})
	}
	if len(seen) != len(want) {
		t.Fatalf("read %d of %d committed records", len(seen), len(want))
	}
}
