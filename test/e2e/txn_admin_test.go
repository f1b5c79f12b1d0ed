package e2e

// The transaction admin APIs (KIP-664) through kadm against the real
// broker: DescribeTransactions and ListTransactions for an open and a
// committed transaction, ListTransactions' filters (states, producer ids,
// the v1 duration filter through a raw request), and DescribeProducers'
// view of the transactional producer on each partition.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTxnAdmin(t *testing.T) {
	t.Parallel()
	const topic, id = "txn-admin", "txn-admin-producer"
	b, adm := txnSetup(t, topic)
	ctx := Ctx(t, 60*time.Second)
	cl := b.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(30*time.Second))

	// An open transaction: 3 records to partition 0, 2 to partition 1,
	// one request each (so sequences 0-2 and 0-1).
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	began := time.Now().UnixMilli()
	for i, p := range []int32{0, 1, 0, 1, 0} {
		r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	dt := describeTxn(t, adm, id)
	if dt.State != "Ongoing" || dt.ProducerID != pid || dt.ProducerEpoch != epoch || dt.TimeoutMillis != 30000 ||
		dt.StartTimestamp < began-1000 || dt.StartTimestamp > time.Now().UnixMilli() {
		t.Fatalf("open transaction described as %+v (pid %d epoch %d)", dt, pid, epoch)
	}
	ps := dt.Topics[topic]
	_, has0 := ps[0]
	_, has1 := ps[1]
	if len(dt.Topics) != 1 || len(ps) != 2 || !has0 || !has1 {
		t.Fatalf("open transaction's partitions: %v", dt.Topics)
	}

	// Listing filters.
	wantListed(t, adm, nil, nil, true)
	wantListed(t, adm, nil, []string{"Ongoing"}, true)
	wantListed(t, adm, nil, []string{"CompleteCommit", "Empty"}, false)
	wantListed(t, adm, []int64{pid}, nil, true)
	wantListed(t, adm, []int64{pid + 1000}, nil, false)
	time.Sleep(300 * time.Millisecond)
	if got := listByDuration(t, cl, 200); !slices.Contains(got, id) {
		t.Fatalf("duration filter 200ms: %v does not include the open transaction", got)
	}
	if got := listByDuration(t, cl, 3600_000); slices.Contains(got, id) {
		t.Fatalf("duration filter 1h: %v includes a transaction open for less", got)
	}
	// v2 (KIP-1152): the transactional id pattern, matched in full.
	if got := listByPattern(t, cl, "txn-admin-.*"); !slices.Contains(got, id) {
		t.Fatalf("pattern txn-admin-.*: %v does not include %s", got, id)
	}
	if got := listByPattern(t, cl, "admin"); slices.Contains(got, id) {
		t.Fatalf("pattern admin: %v includes %s (a substring is not a match)", got, id)
	}

	// The producer on each partition.
	descProducer := func(p int32) kadm.DescribedProducer {
		t.Helper()
		ds, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
		if err != nil {
			t.Fatalf("DescribeProducers: %v", err)
		}
		dp, ok := ds[topic].Partitions[p]
		if !ok || dp.Err != nil {
			t.Fatalf("DescribeProducers %s-%d: %+v", topic, p, dp)
		}
		pr, ok := dp.ActiveProducers[pid]
		if !ok {
			t.Fatalf("DescribeProducers %s-%d: producer %d missing from %+v", topic, p, pid, dp.ActiveProducers)
		}
		return pr
	}
	p0, p1 := descProducer(0), descProducer(1)
	if p0.ProducerEpoch != epoch || p0.LastSequence != 2 || p0.CurrentTxnStartOffset != 0 || p0.LastTimestamp < began-1000 || p0.CoordinatorEpoch != -1 {
		t.Fatalf("partition 0 producer: %+v", p0)
	}
	if p1.ProducerEpoch != epoch || p1.LastSequence != 1 || p1.CurrentTxnStartOffset != 0 {
		t.Fatalf("partition 1 producer: %+v", p1)
	}

	// Commit.
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	dt = describeTxn(t, adm, id)
	if dt.State != "CompleteCommit" || len(dt.Topics) != 0 || dt.StartTimestamp != -1 || dt.ProducerID != pid {
		t.Fatalf("committed transaction described as %+v", dt)
	}
	wantListed(t, adm, nil, []string{"Ongoing"}, false)
	wantListed(t, adm, nil, []string{"CompleteCommit"}, true)
	if got := listByDuration(t, cl, 0); slices.Contains(got, id) {
		t.Fatalf("duration filter lists a completed transaction: %v", got)
	}
	// Transaction version 2: the COMMIT marker carries the bumped epoch,
	// which starts a new sequence window at the partition.
	if p0 = descProducer(0); p0.CurrentTxnStartOffset != -1 || p0.CoordinatorEpoch != 0 || p0.LastSequence != -1 || p0.ProducerEpoch != epoch+1 {
		t.Fatalf("partition 0 producer after commit: %+v", p0)
	}

	// Unknown id.
	ds, err := adm.DescribeTransactions(ctx, "no-such-txn")
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	if d := ds["no-such-txn"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown id: %+v", d)
	}
	// Unknown partition: kgo refuses to route one it has no leader for, so
	// the request goes straight to the broker.
	m, err := adm.BrokerMetadata(ctx)
	if err != nil || len(m.Brokers) != 1 {
		t.Fatalf("metadata: %v %+v", err, m)
	}
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{7}
	req.Topics = append(req.Topics, rt)
	raw, err := cl.Broker(int(m.Brokers[0].NodeID)).Request(ctx, req)
	if err != nil {
		t.Fatalf("DescribeProducers: %v", err)
	}
	resp := raw.(*kmsg.DescribeProducersResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", resp.Topics)
	}
}

func describeTxn(t *testing.T, adm *kadm.Client, id string) kadm.DescribedTransaction {
	t.Helper()
	ds, err := adm.DescribeTransactions(Ctx(t, 10*time.Second), id)
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	d, ok := ds[id]
	if !ok || d.Err != nil {
		t.Fatalf("DescribeTransactions %s: %+v", id, d)
	}
	return d
}

func wantListed(t *testing.T, adm *kadm.Client, pids []int64, states []string, want bool) {
	t.Helper()
	ls, err := adm.ListTransactions(Ctx(t, 10*time.Second), pids, states)
	if err != nil {
		t.Fatalf("ListTransactions: %v", err)
	}
	if _, ok := ls["txn-admin-producer"]; ok != want {
		t.Fatalf("ListTransactions(pids %v, states %v) = %v; listed: %v, want %v", pids, states, ls, ok, want)
	}
}

// listByPattern lists with ListTransactions v2's TransactionalIDPattern.
func listByPattern(t *testing.T, cl *kgo.Client, pattern string) []string {
	t.Helper()
	req := kmsg.NewPtrListTransactionsRequest()
	req.TransactionalIDPattern = &pattern
	return listTxnIDs(t, cl, req, 2)
}

// listByDuration lists with ListTransactions v1's DurationFilterMillis (kadm
// does not expose it).
func listByDuration(t *testing.T, cl *kgo.Client, ms int64) []string {
	t.Helper()
	req := kmsg.NewPtrListTransactionsRequest()
	req.DurationFilterMillis = ms
	return listTxnIDs(t, cl, req, 1)
}

// listTxnIDs sends req, which needs at least version minV for its filter,
// and returns the transactional ids listed.
func listTxnIDs(t *testing.T, cl *kgo.Client, req *kmsg.ListTransactionsRequest, minV int16) []string {
	t.Helper()
	resp, err := req.RequestWith(Ctx(t, 10*time.Second), cl)
	if err != nil {
		t.Fatalf("ListTransactions: %v", err)
	}
	if resp.Version < minV {
		t.Fatalf("ListTransactions answered at v%d, the filter needs v%d", resp.Version, minV)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("ListTransactions: %v", err)
	}
	var ids []string
	for _, s := range resp.TransactionStates {
		ids = append(ids, s.TransactionalID)
	}
	return ids
}
