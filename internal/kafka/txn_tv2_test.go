package kafka

import (
	"testing"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (f *brokerFixture) txnProduceV(v int16, id string, pid int64, epoch int16, seq int32, n int) kmsg.ProduceResponseTopicPartition {
	f.t.Helper()
	s := batchSpec{n: n, pid: pid, epoch: epoch, seq: seq, valueSize: 5, attrs: storage.AttrTransactional}
	req := produceReq("t", 0, -1, makeRecordBatch(f.t, s))
	req.TransactionID = kmsg.StringPtr(id)
	return f.do(req, v).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

func (f *brokerFixture) endTxnV5(id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	f.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return f.do(req, 5).(*kmsg.EndTxnResponse)
}

// TestTxnVersion2Produce: under transaction version 2 a produce v12+ enrols
// its partition itself, v11 still needs AddPartitionsToTxn, EndTxn v5 bumps
// the epoch, and the finished transaction's epoch is fenced.
func TestTxnVersion2Produce(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.TransactionVersion = 2 })
	f.createTopic("t", 1, nil)
	withTxn(t, f)
	pid, epoch := f.initTxn("x")

	sp := f.txnProduceV(11, "x", pid, epoch, 0, 2)
	wantCode(t, "v11 produce without AddPartitionsToTxn", sp.ErrorCode, kerr.InvalidTxnState)
	if sp = f.txnProduceV(12, "x", pid, epoch, 0, 2); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("v12 produce: %+v", sp)
	}
	if rc := f.fetchIso(0, 1); rc.LastStableOffset != 0 {
		t.Fatalf("open transaction: lso %d", rc.LastStableOffset)
	}
	resp := f.endTxnV5("x", pid, epoch, true)
	wantCode(t, "EndTxn v5", resp.ErrorCode, nil)
	if resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 answered %d/%d, want %d/%d", resp.ProducerID, resp.ProducerEpoch, pid, epoch+1)
	}
	if rc := f.fetchIso(0, 1); rc.LastStableOffset != 3 || rc.HighWatermark != 3 {
		t.Fatalf("after commit: lso %d hwm %d", rc.LastStableOffset, rc.HighWatermark)
	}
	// The old epoch is fenced at the partition and the coordinator.
	sp = f.txnProduceV(12, "x", pid, epoch, 2, 1)
	wantCode(t, "late produce of the old epoch", sp.ErrorCode, kerr.InvalidProducerEpoch)
	// The next transaction starts with the new epoch at sequence 0.
	epoch++
	if sp = f.txnProduceV(12, "x", pid, epoch, 0, 1); sp.ErrorCode != 0 || sp.BaseOffset != 3 {
		t.Fatalf("next transaction's produce: %+v", sp)
	}
	resp = f.endTxnV5("x", pid, epoch, false)
	wantCode(t, "abort v5", resp.ErrorCode, nil)
	if rc := f.fetchIso(0, 1); rc.LastStableOffset != 5 || len(rc.AbortedTransactions) != 1 {
		t.Fatalf("after abort: lso %d aborted %v", rc.LastStableOffset, abortedOf(rc))
	}
}

// TestTxnVersion1RefusesV5: with transaction version 1 EndTxn v5 is refused
// and a produce v12 does not enrol its partition.
func TestTxnVersion1RefusesV5(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.TransactionVersion = 1 })
	f.createTopic("t", 1, nil)
	withTxn(t, f)
	pid, epoch := f.initTxn("x")
	wantCode(t, "v12 produce", f.txnProduceV(12, "x", pid, epoch, 0, 1).ErrorCode, kerr.InvalidTxnState)
	wantCode(t, "EndTxn v5", f.endTxnV5("x", pid, epoch, false).ErrorCode, kerr.UnsupportedVersion)
}

// TestTxnVersion2ProduceEnrolsAllPartitions: one produce v12 request for
// several partitions enrols them all (with one coordinator call), and a
// fenced epoch fails every partition of the request, writing nothing.
func TestTxnVersion2ProduceEnrolsAllPartitions(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.TransactionVersion = 2 })
	f.createTopic("u", 3, nil)
	c := withTxn(t, f)
	pid, epoch := f.initTxn("m")
	req := func(epoch int16) *kmsg.ProduceRequest {
		r := produceReq("u", 0, -1, makeRecordBatch(t, batchSpec{n: 1, pid: pid, epoch: epoch, valueSize: 5, attrs: storage.AttrTransactional}))
		for p := int32(1); p < 3; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = makeRecordBatch(t, batchSpec{n: 1, pid: pid, epoch: epoch, valueSize: 5, attrs: storage.AttrTransactional})
			r.Topics[0].Partitions = append(r.Topics[0].Partitions, rp)
		}
		r.TransactionID = kmsg.StringPtr("m")
		return r
	}
	for _, sp := range f.do(req(epoch), 12).(*kmsg.ProduceResponse).Topics[0].Partitions {
		wantCode(t, "produce", sp.ErrorCode, nil)
	}
	if st, _ := c.State("m"); len(st.Partitions) != 3 || st.Status != "Ongoing" {
		t.Fatalf("transaction %s with partitions %v, want Ongoing with 3", st.Status, st.Partitions)
	}
	wantCode(t, "commit", f.endTxnV5("m", pid, epoch, true).ErrorCode, nil)
	for _, sp := range f.do(req(epoch), 12).(*kmsg.ProduceResponse).Topics[0].Partitions {
		wantCode(t, "produce of the finished epoch", sp.ErrorCode, kerr.InvalidProducerEpoch)
	}
	if st, _ := c.State("m"); len(st.Partitions) != 0 || st.Status != "CompleteCommit" {
		t.Fatalf("fenced produce changed the transaction: %s %v", st.Status, st.Partitions)
	}
}
