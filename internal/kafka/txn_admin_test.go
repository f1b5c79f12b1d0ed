package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (f *brokerFixture) describeProducers(topic string, parts ...int32) []kmsg.DescribeProducersResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, 0).(*kmsg.DescribeProducersResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != topic || len(resp.Topics[0].Partitions) != len(parts) {
		f.t.Fatalf("DescribeProducers response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions
}

type activeProducer = kmsg.DescribeProducersResponseTopicPartitionActiveProducer

func producerOf(t *testing.T, sp kmsg.DescribeProducersResponseTopicPartition, pid int64) activeProducer {
	t.Helper()
	for _, ap := range sp.ActiveProducers {
		if ap.ProducerID == pid {
			return ap
		}
	}
	t.Fatalf("partition %d: producer %d not listed in %+v", sp.Partition, pid, sp.ActiveProducers)
	return activeProducer{}
}

func wantProducer(t *testing.T, what string, got activeProducer, epoch int32, lastSeq int32, lastTs int64, coordEpoch int32, txnStart int64) {
	t.Helper()
	if got.ProducerEpoch != epoch || got.LastSequence != lastSeq || got.CoordinatorEpoch != coordEpoch || got.CurrentTxnStartOffset != txnStart ||
		(lastTs >= 0 && got.LastTimestamp != lastTs) || (lastTs < 0 && got.LastTimestamp <= 0) {
		t.Fatalf("%s: %+v; want epoch %d last seq %d last ts %d coordinator epoch %d txn start %d",
			what, got, epoch, lastSeq, lastTs, coordEpoch, txnStart)
	}
}

// TestDescribeProducersHandler: idempotent and transactional producers with
// their epoch, last sequence and timestamp, coordinator epoch and open
// transaction; unknown partitions; the state survives clean and crash
// restarts.
func TestDescribeProducersHandler(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	c := withTxn(t, f)

	idem := initPID(f, -1, -1, nil)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 3, pid: idem.ProducerID, epoch: 0, seq: 0, ts: ts, valueSize: 5}))
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 2, pid: idem.ProducerID, epoch: 0, seq: 3, ts: ts + 10, valueSize: 5}))

	pid, epoch := f.initTxn("x")
	wantCode(t, "add", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
	if sp := f.txnProduce("x", pid, epoch, 0, 3); sp.ErrorCode != 0 || sp.BaseOffset != 5 {
		t.Fatalf("txn produce: %+v", sp)
	}

	sps := f.describeProducers("t", 0, 1, 7)
	if len(sps[0].ActiveProducers) != 2 || sps[0].ErrorCode != 0 {
		t.Fatalf("t-0: %+v", sps[0])
	}
	if sps[0].ActiveProducers[0].ProducerID > sps[0].ActiveProducers[1].ProducerID {
		t.Fatalf("producers not sorted by id: %+v", sps[0].ActiveProducers)
	}
	wantProducer(t, "idempotent", producerOf(t, sps[0], idem.ProducerID), 0, 4, ts+11, -1, -1)
	wantProducer(t, "open txn", producerOf(t, sps[0], pid), int32(epoch), 2, -1, -1, 5)
	if sps[1].ErrorCode != 0 || len(sps[1].ActiveProducers) != 0 {
		t.Fatalf("t-1 (no producers): %+v", sps[1])
	}
	wantCode(t, "t-7", sps[2].ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown topic", f.describeProducers("nope", 0)[0].ErrorCode, kerr.UnknownTopicOrPartition)

	wantCode(t, "commit", f.endTxn("x", pid, epoch, true), nil)
	after := producerOf(t, f.describeProducers("t", 0)[0], pid)
	wantProducer(t, "committed txn", after, int32(epoch), 2, -1, 0, -1)
	c.Close()

	// Clean restart (producer snapshot), then crash restart (log replay).
	for _, crash := range []bool{false, true} {
		f = f.reopen(crash)
		sp := f.describeProducers("t", 0)[0]
		wantProducer(t, "idempotent after reopen", producerOf(t, sp, idem.ProducerID), 0, 4, ts+11, -1, -1)
		got := producerOf(t, sp, pid)
		wantProducer(t, "txn after reopen", got, int32(epoch), 2, -1, 0, -1)
		if crash && got.LastTimestamp != after.LastTimestamp {
			// Replay takes the marker's batch timestamp, written the same
			// millisecond as the live value or just before.
			if d := after.LastTimestamp - got.LastTimestamp; d < 0 || d > 1000 {
				t.Fatalf("marker timestamp after replay %d, live %d", got.LastTimestamp, after.LastTimestamp)
			}
		}
	}
	f.close()
}

func describeTxns(f *brokerFixture, ids ...string) []kmsg.DescribeTransactionsResponseTransactionState {
	f.t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = ids
	return f.do(req, 0).(*kmsg.DescribeTransactionsResponse).TransactionStates
}

func TestDescribeTransactionsHandler(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	f.createTopic("u", 1, nil)

	// Without a coordinator.
	wantCode(t, "no coordinator", describeTxns(f, "x")[0].ErrorCode, kerr.CoordinatorNotAvailable)

	withTxn(t, f)
	before := time.Now().UnixMilli()
	pid, epoch := f.initTxn("x")
	wantCode(t, "add t-1", f.addTxnPartition("x", pid, epoch, "t", 1), nil)
	wantCode(t, "add u-0", f.addTxnPartition("x", pid, epoch, "u", 0), nil)
	wantCode(t, "add t-0", f.addTxnPartition("x", pid, epoch, "t", 0), nil)

	sts := describeTxns(f, "x", "missing", "x")
	if len(sts) != 2 || sts[0].TransactionalID != "x" || sts[1].TransactionalID != "missing" {
		t.Fatalf("describe shape: %+v", sts)
	}
	x := sts[0]
	if x.ErrorCode != 0 || x.State != "Ongoing" || x.ProducerID != pid || x.ProducerEpoch != epoch || x.TimeoutMillis != 60000 ||
		x.StartTimestamp < before || x.StartTimestamp > time.Now().UnixMilli() {
		t.Fatalf("ongoing: %+v", x)
	}
	if len(x.Topics) != 2 || x.Topics[0].Topic != "t" || !slices.Equal(x.Topics[0].Partitions, []int32{1, 0}) ||
		x.Topics[1].Topic != "u" || !slices.Equal(x.Topics[1].Partitions, []int32{0}) {
		t.Fatalf("ongoing topics: %+v", x.Topics)
	}
	wantCode(t, "missing", sts[1].ErrorCode, kerr.TransactionalIDNotFound)

	wantCode(t, "commit", f.endTxn("x", pid, epoch, true), nil)
	x = describeTxns(f, "x")[0]
	if x.State != "CompleteCommit" || len(x.Topics) != 0 || x.StartTimestamp != -1 || x.ProducerEpoch != epoch {
		t.Fatalf("committed: %+v", x)
	}
	wantCode(t, "add again", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
	wantCode(t, "abort", f.endTxn("x", pid, epoch, false), nil)
	if x = describeTxns(f, "x")[0]; x.State != "CompleteAbort" {
		t.Fatalf("aborted: %+v", x)
	}
	_, epoch2 := f.initTxn("x")
	if x = describeTxns(f, "x")[0]; x.State != "Empty" || x.ProducerEpoch != epoch2 || epoch2 != epoch+1 {
		t.Fatalf("re-initialised: %+v", x)
	}
	if got := describeTxns(f); len(got) != 0 {
		t.Fatalf("empty request answered %+v", got)
	}
}

func listTxns(f *brokerFixture, v int16, states []string, pids []int64, duration int64) *kmsg.ListTransactionsResponse {
	f.t.Helper()
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters, req.ProducerIDFilters, req.DurationFilterMillis = states, pids, duration
	return f.do(req, v).(*kmsg.ListTransactionsResponse)
}

func listedIDs(resp *kmsg.ListTransactionsResponse) []string {
	var out []string
	for _, ts := range resp.TransactionStates {
		out = append(out, ts.TransactionalID+"="+ts.TransactionState)
	}
	return out
}

func TestListTransactionsHandler(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	wantCode(t, "no coordinator", listTxns(f, 1, nil, nil, -1).ErrorCode, kerr.CoordinatorNotAvailable)

	withTxn(t, f)
	px, ex := f.initTxn("x")
	wantCode(t, "add x", f.addTxnPartition("x", px, ex, "t", 0), nil)
	py, ey := f.initTxn("y")
	wantCode(t, "add y", f.addTxnPartition("y", py, ey, "t", 0), nil)
	wantCode(t, "commit y", f.endTxn("y", py, ey, true), nil)
	pz, _ := f.initTxn("z")
	time.Sleep(20 * time.Millisecond) // x has been running for a while

	for _, tc := range []struct {
		name     string
		v        int16
		states   []string
		pids     []int64
		duration int64
		want     []string
		unknown  []string
	}{
		{"all v0", 0, nil, nil, -1, []string{"x=Ongoing", "y=CompleteCommit", "z=Empty"}, nil},
		{"all v1", 1, nil, nil, -1, []string{"x=Ongoing", "y=CompleteCommit", "z=Empty"}, nil},
		{"states", 0, []string{"Empty", "Ongoing"}, nil, -1, []string{"x=Ongoing", "z=Empty"}, nil},
		{"unknown state", 0, []string{"Bogus", "CompleteCommit"}, nil, -1, []string{"y=CompleteCommit"}, []string{"Bogus"}},
		{"only unknown states", 0, []string{"ongoing"}, nil, -1, nil, []string{"ongoing"}},
		{"pids", 0, nil, []int64{py, pz}, -1, []string{"y=CompleteCommit", "z=Empty"}, nil},
		{"pids and states", 0, []string{"Ongoing"}, []int64{py, pz}, -1, nil, nil},
		{"running > 10ms", 1, nil, nil, 10, []string{"x=Ongoing"}, nil},
		{"running > 1h", 1, nil, nil, 3600000, nil, nil},
		{"duration ignored at v0", 0, nil, nil, 3600000, []string{"x=Ongoing", "y=CompleteCommit", "z=Empty"}, nil},
	} {
		resp := listTxns(f, tc.v, tc.states, tc.pids, tc.duration)
		if got := listedIDs(resp); resp.ErrorCode != 0 || !slices.Equal(got, tc.want) || !slices.Equal(resp.UnknownStateFilters, tc.unknown) {
			t.Errorf("%s: error %d, got %v unknown %v; want %v unknown %v", tc.name, resp.ErrorCode, got, resp.UnknownStateFilters, tc.want, tc.unknown)
		}
	}
	resp := listTxns(f, 0, []string{"Ongoing"}, nil, -1)
	if resp.TransactionStates[0].ProducerID != px {
		t.Fatalf("producer id %d, want %d", resp.TransactionStates[0].ProducerID, px)
	}

	// v2: TransactionalIdPattern, matched against the whole id, combined
	// with the other filters; ignored below v2.
	pa, _ := f.initTxn("app-1")
	f.initTxn("app-22")
	f.initTxn("other-app-3")
	pattern := func(v int16, pat *string, states []string, pids []int64) *kmsg.ListTransactionsResponse {
		t.Helper()
		req := kmsg.NewPtrListTransactionsRequest()
		req.StateFilters, req.ProducerIDFilters, req.TransactionalIDPattern = states, pids, pat
		return f.do(req, v).(*kmsg.ListTransactionsResponse)
	}
	str := func(s string) *string { return &s }
	all := []string{"app-1=Empty", "app-22=Empty", "other-app-3=Empty", "x=Ongoing", "y=CompleteCommit", "z=Empty"}
	for _, tc := range []struct {
		name   string
		v      int16
		pat    *string
		states []string
		pids   []int64
		want   []string
	}{
		{"prefix", 2, str("app-.*"), nil, nil, []string{"app-1=Empty", "app-22=Empty"}},
		{"whole id, not a substring", 2, str("app-\\d"), nil, nil, []string{"app-1=Empty"}},
		{"alternation anchored as a whole", 2, str("x|app-1"), nil, nil, []string{"app-1=Empty", "x=Ongoing"}},
		{"with a state", 2, str(".*app.*"), []string{"Ongoing"}, nil, nil},
		{"with a pid", 2, str(".*app.*"), nil, []int64{pa}, []string{"app-1=Empty"}},
		{"null", 2, nil, nil, nil, all},
		{"empty", 2, str(""), nil, nil, all},
		{"ignored at v1", 1, str("nothing"), nil, nil, all},
	} {
		resp := pattern(tc.v, tc.pat, tc.states, tc.pids)
		if got := listedIDs(resp); resp.ErrorCode != 0 || !slices.Equal(got, tc.want) {
			t.Errorf("%s: error %d, got %v, want %v", tc.name, resp.ErrorCode, got, tc.want)
		}
	}
	if resp := pattern(2, str("app-("), nil, nil); resp.ErrorCode != kerr.InvalidRegularExpression.Code || len(resp.TransactionStates) != 0 {
		t.Errorf("bad pattern: error %d, %d states; want INVALID_REGULAR_EXPRESSION", resp.ErrorCode, len(resp.TransactionStates))
	}
}
