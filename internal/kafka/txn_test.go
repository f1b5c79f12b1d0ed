package kafka

import (
	"math"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// withTxn installs a transaction coordinator (no timeout loop) on f.
func withTxn(t *testing.T, f *brokerFixture) *txn.Coordinator {
	t.Helper()
	parts, err := f.b.EnsureInternalTopic(TxnStateTopic, 5)
	if err != nil {
		t.Fatal(err)
	}
	c, err := txn.Open(txn.Options{State: parts, DataDir: f.dir, Markers: f.b.TxnMarkers(), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.b.SetTxn(c)
	t.Cleanup(func() { c.Close() }) // runs before the fixture's close
	return c
}

func (f *brokerFixture) initTxn(id string) (int64, int16) {
	f.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr(id)
	req.TransactionTimeoutMillis = 60000
	resp := f.do(req, 4).(*kmsg.InitProducerIDResponse)
	wantCode(f.t, "InitProducerId", resp.ErrorCode, nil)
	return resp.ProducerID, resp.ProducerEpoch
}

func (f *brokerFixture) addTxnPartition(id string, pid int64, epoch int16, topic string, p int32) int16 {
	f.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{p}
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, 3).(*kmsg.AddPartitionsToTxnResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (f *brokerFixture) endTxn(id string, pid int64, epoch int16, commit bool) int16 {
	f.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return f.do(req, 3).(*kmsg.EndTxnResponse).ErrorCode
}

func (f *brokerFixture) txnProduce(id string, pid int64, epoch int16, seq int32, n int) kmsg.ProduceResponseTopicPartition {
	f.t.Helper()
	s := batchSpec{n: n, pid: pid, epoch: epoch, seq: seq, valueSize: 5, attrs: storage.AttrTransactional}
	req := produceReq("t", 0, -1, makeRecordBatch(f.t, s))
	req.TransactionID = kmsg.StringPtr(id)
	return f.do(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// fetchIso fetches t/0 from offset with an isolation level (sessionless).
func (f *brokerFixture) fetchIso(offset int64, iso int8) kmsg.FetchResponseTopicPartition {
	f.t.Helper()
	req := fetchReq("t", [16]byte{}, 0, offset, 1<<20)
	req.IsolationLevel = iso
	return f.do(req, 12).(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

func (f *brokerFixture) listOffsetIso(iso int8) int64 {
	f.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = iso
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return f.do(req, 8).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
}

func abortedOf(sp kmsg.FetchResponseTopicPartition) [][2]int64 {
	var out [][2]int64
	for _, a := range sp.AbortedTransactions {
		out = append(out, [2]int64{a.ProducerID, a.FirstOffset})
	}
	return out
}

func TestTxnProduceFetchIsolation(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	withTxn(t, f)
	pid, epoch := f.initTxn("x")

	// Not added to the transaction yet.
	sp := f.txnProduce("x", pid, epoch, 0, 3)
	wantCode(t, "produce before AddPartitions", sp.ErrorCode, kerr.InvalidTxnState)
	wantCode(t, "add", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
	if sp = f.txnProduce("x", pid, epoch, 0, 3); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("txn produce: %+v", sp)
	}
	// The open transaction holds the LSO at its first offset.
	rc := f.fetchIso(0, 1)
	if rc.LastStableOffset != 0 || rc.HighWatermark != 3 || len(rc.RecordBatches) != 0 {
		t.Fatalf("read_committed with open txn: lso %d hwm %d %d bytes", rc.LastStableOffset, rc.HighWatermark, len(rc.RecordBatches))
	}
	if ru := f.fetchIso(0, 0); len(batchOffsets(t, ru.RecordBatches)) != 1 {
		t.Fatalf("read_uncommitted with open txn: %v", batchOffsets(t, ru.RecordBatches))
	}
	if lc, lu := f.listOffsetIso(1), f.listOffsetIso(0); lc != 0 || lu != 3 {
		t.Fatalf("ListOffsets latest: committed %d uncommitted %d", lc, lu)
	}

	// Abort: marker at 3, the aborted transaction is reported.
	wantCode(t, "abort", f.endTxn("x", pid, epoch, false), nil)
	rc = f.fetchIso(0, 1)
	if rc.LastStableOffset != 4 || !slices.Equal(abortedOf(rc), [][2]int64{{pid, 0}}) {
		t.Fatalf("after abort: lso %d aborted %v", rc.LastStableOffset, abortedOf(rc))
	}
	if got := batchOffsets(t, rc.RecordBatches); len(got) != 2 || got[1][0] != 3 {
		t.Fatalf("after abort batches %v (want data + marker)", got)
	}
	if ru := f.fetchIso(0, 0); len(ru.AbortedTransactions) != 0 {
		t.Fatalf("read_uncommitted got aborted transactions %v", abortedOf(ru))
	}

	// Commit a second transaction: only the first stays aborted.
	wantCode(t, "add 2", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
	if sp = f.txnProduce("x", pid, epoch, 3, 2); sp.ErrorCode != 0 || sp.BaseOffset != 4 {
		t.Fatalf("txn produce 2: %+v", sp)
	}
	wantCode(t, "commit", f.endTxn("x", pid, epoch, true), nil)
	rc = f.fetchIso(4, 1)
	if rc.LastStableOffset != 7 || len(rc.AbortedTransactions) != 0 {
		t.Fatalf("after commit, from 4: lso %d aborted %v", rc.LastStableOffset, abortedOf(rc))
	}
	if rc = f.fetchIso(0, 1); !slices.Equal(abortedOf(rc), [][2]int64{{pid, 0}}) {
		t.Fatalf("after commit, from 0: aborted %v", abortedOf(rc))
	}

	// A new InitProducerId fences the old epoch, also at the partition.
	wantCode(t, "add 3", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
	if sp = f.txnProduce("x", pid, epoch, 5, 1); sp.ErrorCode != 0 {
		t.Fatalf("txn produce 3: %+v", sp)
	}
	pid2, epoch2 := f.initTxn("x")
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("reinit: %d/%d", pid2, epoch2)
	}
	sp = f.txnProduce("x", pid, epoch, 6, 1)
	wantCode(t, "zombie produce", sp.ErrorCode, kerr.InvalidProducerEpoch)
	wantCode(t, "zombie end", f.endTxn("x", pid, epoch, true), kerr.ProducerFenced)
	rc = f.fetchIso(0, 1)
	if want := [][2]int64{{pid, 0}, {pid, 7}}; !slices.Equal(abortedOf(rc), want) || rc.LastStableOffset != rc.HighWatermark {
		t.Fatalf("after fencing: aborted %v want %v, lso %d hwm %d", abortedOf(rc), want, rc.LastStableOffset, rc.HighWatermark)
	}
	// The new epoch starts its sequences at 0.
	wantCode(t, "add new epoch", f.addTxnPartition("x", pid2, epoch2, "t", 0), nil)
	if sp = f.txnProduce("x", pid2, epoch2, 0, 1); sp.ErrorCode != 0 {
		t.Fatalf("new epoch produce: %+v", sp)
	}
}

func TestTxnPartitionStateRebuilt(t *testing.T) {
	for _, crash := range []bool{false, true} {
		f := newFixture(t)
		f.createTopic("t", 1, nil)
		c := withTxn(t, f)
		pid, epoch := f.initTxn("x")
		f.addTxnPartition("x", pid, epoch, "t", 0)
		f.txnProduce("x", pid, epoch, 0, 2)                         // 0-1
		wantCode(t, "abort", f.endTxn("x", pid, epoch, false), nil) // marker 2
		f.addTxnPartition("x", pid, epoch, "t", 0)
		f.txnProduce("x", pid, epoch, 2, 2) // 3-4, left open
		c.Close()
		f.b.SetTxn(nil)
		g := f.reopen(crash)
		p := g.b.partition("t", 0)
		if got := p.LastStable(); got != 3 {
			t.Errorf("crash %v: lso after reopen %d, want 3", crash, got)
		}
		if want := []partition.AbortedTxn{{PID: pid, First: 0, Last: 2}}; !slices.Equal(p.AbortedIn(0, math.MaxInt64), want) {
			t.Errorf("crash %v: aborted after reopen %+v, want %+v", crash, p.AbortedIn(0, math.MaxInt64), want)
		}
		// The coordinator keeps the open transaction when it reopens;
		// the producer's abort then closes it.
		withTxn(t, g)
		if got := p.LastStable(); got != 3 {
			t.Errorf("crash %v: lso %d after coordinator recovery, want 3 (still open)", crash, got)
		}
		wantCode(t, "abort after the restart", g.endTxn("x", pid, epoch, false), nil)
		if got := p.LastStable(); got != p.HighWatermark() {
			t.Errorf("crash %v: lso %d after the abort, hwm %d", crash, got, p.HighWatermark())
		}
		if got := p.AbortedIn(0, math.MaxInt64); len(got) != 2 {
			t.Errorf("crash %v: aborted after the abort %+v", crash, got)
		}
	}
}
