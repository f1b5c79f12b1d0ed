package e2e

// Transactions with franz-go's transactional producer: commit and abort as
// seen by read_committed and read_uncommitted consumers, zombie fencing, and
// a consume-transform-produce GroupTransactSession.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProduce produces n records tagged tag in one transaction and commits
// or aborts it.
func txnProduce(t *testing.T, cl *kgo.Client, topic, tag string, n int, commit bool) {
	t.Helper()
	ctx := Ctx(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", tag, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction %s (commit %v): %v", tag, commit, err)
	}
}

// txnConsume reads topic from the start until want records arrived (or the
// log end is reached with isolation level iso) and returns their values.
func txnConsume(t *testing.T, b *Broker, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// A little more, to catch records that should not be there.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	cancel()
	slices.Sort(got)
	return got
}

func txnValues(tag string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%s-%d", tag, i))
	}
	return out
}

func txnSetup(t *testing.T, topics ...string) (*Broker, *kadm.Client) {
	t.Helper()
	b := StartBroker(t)
	adm := kadm.NewClient(b.Client(t))
	for _, tp := range topics {
		clientsCreateTopic(t, adm, tp, 2, nil)
	}
	return b, adm
}

func TestTxnCommitAbort(t *testing.T) {
	t.Parallel()
	b, adm := txnSetup(t, "txn-ca")
	cl := b.Client(t, kgo.TransactionalID("txn-ca-producer"), kgo.DefaultProduceTopic("txn-ca"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txnProduce(t, cl, "txn-ca", "c1", 10, true)
	txnProduce(t, cl, "txn-ca", "a1", 10, false)
	txnProduce(t, cl, "txn-ca", "c2", 6, true)

	committed := append(txnValues("c1", 10), txnValues("c2", 6)...)
	slices.Sort(committed)
	all := append(txnValues("a1", 10), committed...)
	slices.Sort(all)

	if got := txnConsume(t, b, "txn-ca", kgo.ReadCommitted(), len(committed)); !slices.Equal(got, committed) {
		t.Errorf("read_committed saw %v\nwant %v", got, committed)
	}
	if got := txnConsume(t, b, "txn-ca", kgo.ReadUncommitted(), len(all)); !slices.Equal(got, all) {
		t.Errorf("read_uncommitted saw %v\nwant %v", got, all)
	}

	// An open transaction holds back the last stable offset.
	ctx := Ctx(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "txn-ca", Partition: 0, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "txn-ca")
	if err != nil {
		t.Fatal(err)
	}
	hwm, _ := end.Lookup("txn-ca", 0)
	if hwm.Err != nil {
		t.Fatalf("list end offsets: %v", hwm.Err)
	}
	committedEnd, err := adm.ListCommittedOffsets(ctx, "txn-ca")
	if err != nil {
		t.Fatal(err)
	}
	lso, _ := committedEnd.Lookup("txn-ca", 0)
	if lso.Err != nil {
		t.Fatalf("list committed end offsets: %v", lso.Err)
	}
	if lso.Offset != hwm.Offset-1 {
		t.Errorf("read_committed end offset %d with an open transaction, want %d (hwm %d)", lso.Offset, hwm.Offset-1, hwm.Offset)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committedEnd, err = adm.ListCommittedOffsets(ctx, "txn-ca")
	if err != nil {
		t.Fatal(err)
	}
	if lso, _ = committedEnd.Lookup("txn-ca", 0); lso.Offset != hwm.Offset+1 {
		t.Errorf("read_committed end offset %d after commit, want %d", lso.Offset, hwm.Offset+1)
	}
}

func TestTxnZombieFenced(t *testing.T) {
	t.Parallel()
	b, _ := txnSetup(t, "txn-zombie")
	ctx := Ctx(t, 30*time.Second)
	old := b.Client(t, kgo.TransactionalID("zombie"), kgo.DefaultProduceTopic("txn-zombie"))
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("zombie-0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A second producer with the same id fences the first and aborts its
	// open transaction.
	fresh := b.Client(t, kgo.TransactionalID("zombie"), kgo.DefaultProduceTopic("txn-zombie"))
	txnProduce(t, fresh, "txn-zombie", "fresh", 4, true)

	perr := old.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("zombie-1")}).FirstErr()
	eerr := old.EndTransaction(ctx, kgo.TryCommit)
	if perr == nil && eerr == nil {
		t.Fatal("the fenced producer could still produce and commit")
	}
	if eerr != nil && !errors.Is(eerr, kerr.ProducerFenced) && !errors.Is(eerr, kerr.InvalidProducerEpoch) && !errors.Is(eerr, kerr.InvalidProducerIDMapping) && perr == nil {
		t.Errorf("end transaction of fenced producer: %v (want a fencing error)", eerr)
	}
	want := txnValues("fresh", 4)
	if got := txnConsume(t, b, "txn-zombie", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
		t.Errorf("read_committed saw %v, want %v", got, want)
	}
}

func TestTxnGroupTransactSession(t *testing.T) {
	t.Parallel()
	b, adm := txnSetup(t, "txn-in", "txn-out")
	ctx := Ctx(t, 60*time.Second)
	in := b.Client(t, kgo.DefaultProduceTopic("txn-in"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 20
	for i := 0; i < n; i++ {
		if err := in.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprintf("in-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.Addr), kgo.TransactionalID("etl"),
		kgo.ConsumerGroup("etl-group"), kgo.ConsumeTopics("txn-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("txn-out"),
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
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Value: append([]byte("out-"), r.Value...)}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			done += len(recs)
		}
	}
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("out-in-%d", i))
	}
	slices.Sort(want)
	if got := txnConsume(t, b, "txn-out", kgo.ReadCommitted(), n); !slices.Equal(got, want) {
		t.Errorf("output %v\nwant %v", got, want)
	}
	offs, err := adm.FetchOffsets(ctx, "etl-group")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for p := int32(0); p < 2; p++ {
		o, ok := offs.Lookup("txn-in", p)
		if !ok {
			t.Fatalf("no committed offset for txn-in/%d", p)
		}
		total += o.At
	}
	if total != n {
		t.Errorf("committed offsets sum %d, want %d", total, n)
	}
}

// TestTxnSurvivesCrash: committed and aborted transactions keep their
// meaning across a kill -9, and a transaction left open by the crash is
// aborted on restart so read_committed consumers are not blocked by it.
func TestTxnSurvivesCrash(t *testing.T) {
	t.Parallel()
	b, _ := txnSetup(t, "txn-crash")
	opts := []kgo.Opt{kgo.TransactionalID("crashy"), kgo.DefaultProduceTopic("txn-crash"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}
	cl := b.Client(t, opts...)
	txnProduce(t, cl, "txn-crash", "c1", 4, true)
	txnProduce(t, cl, "txn-crash", "a1", 4, false)
	ctx := Ctx(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("open-0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Kill()

	b2 := StartBrokerIn(t, b.DataDir)
	want := txnValues("c1", 4)
	if got := txnConsume(t, b2, "txn-crash", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
		t.Errorf("read_committed after crash saw %v, want %v", got, want)
	}
	// The producer carries on under the same transactional id.
	cl2 := b2.Client(t, opts...)
	txnProduce(t, cl2, "txn-crash", "c2", 2, true)
	want = append(want, txnValues("c2", 2)...)
	slices.Sort(want)
	if got := txnConsume(t, b2, "txn-crash", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
		t.Errorf("read_committed after restart saw %v, want %v", got, want)
	}
}

// TestTxnTimeoutAborted: the broker aborts a transaction left open past
// transaction.timeout.ms, so it no longer holds back read_committed readers,
// and the producer can no longer commit it.
func TestTxnTimeoutAborted(t *testing.T) {
	t.Parallel()
	b, adm := txnSetup(t, "txn-timeout")
	ctx := Ctx(t, 30*time.Second)
	cl := b.Client(t, kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("txn-timeout"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(1500*time.Millisecond))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	CheckFor(t, 15*time.Second, func() error {
		end, err := adm.ListEndOffsets(ctx, "txn-timeout")
		if err != nil {
			return err
		}
		stable, err := adm.ListCommittedOffsets(ctx, "txn-timeout")
		if err != nil {
			return err
		}
		hwm, _ := end.Lookup("txn-timeout", 0)
		lso, _ := stable.Lookup("txn-timeout", 0)
		if lso.Offset != hwm.Offset || hwm.Offset != 2 { // record + ABORT marker
			return fmt.Errorf("lso %d hwm %d", lso.Offset, hwm.Offset)
		}
		return nil
	})
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("committed a transaction the broker aborted")
	}
	if got := txnConsume(t, b, "txn-timeout", kgo.ReadCommitted(), 0); len(got) != 0 {
		t.Errorf("read_committed saw %v", got)
	}
}
