package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// addTxnV4 sends the batched (v4+) AddPartitionsToTxn form for one
// transaction and returns the per-partition codes in request order.
func (f *brokerFixture) addTxnV4(v int16, id string, pid int64, epoch int16, verify bool, topic string, parts ...int32) []int16 {
	f.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	rx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch, rx.VerifyOnly = id, pid, epoch, verify
	rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rt.Topic, rt.Partitions = topic, parts
	rx.Topics = append(rx.Topics, rt)
	req.Transactions = append(req.Transactions, rx)
	resp := f.do(req, v).(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 || len(resp.Transactions) != 1 || resp.Transactions[0].TransactionalID != id {
		f.t.Fatalf("v%d response: code %d transactions %+v", v, resp.ErrorCode, resp.Transactions)
	}
	var codes []int16
	for _, st := range resp.Transactions[0].Topics {
		for _, sp := range st.Partitions {
			codes = append(codes, sp.ErrorCode)
		}
	}
	if len(codes) != len(parts) {
		f.t.Fatalf("v%d: %d partition answers for %d partitions", v, len(codes), len(parts))
	}
	return codes
}

// TestAddPartitionsToTxnBatchedForm: the KIP-890 broker form adds
// partitions, and VerifyOnly reports enrolment without changing it.
func TestAddPartitionsToTxnBatchedForm(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	withTxn(t, f)
	pid, epoch := f.initTxn("v")

	// Nothing enrolled: verification says so and enrols nothing.
	codes := f.addTxnV4(4, "v", pid, epoch, true, "t", 0, 1)
	wantCode(t, "verify before add p0", codes[0], kerr.InvalidTxnState)
	wantCode(t, "verify before add p1", codes[1], kerr.InvalidTxnState)
	sp := f.txnProduce("v", pid, epoch, 0, 1)
	wantCode(t, "produce after verify-only", sp.ErrorCode, kerr.InvalidTxnState)

	// v5, not verify-only: adds p0.
	codes = f.addTxnV4(5, "v", pid, epoch, false, "t", 0)
	wantCode(t, "add p0 (v5)", codes[0], nil)
	codes = f.addTxnV4(4, "v", pid, epoch, true, "t", 0, 1)
	wantCode(t, "verify p0", codes[0], nil)
	wantCode(t, "verify p1", codes[1], kerr.InvalidTxnState)
	if sp = f.txnProduce("v", pid, epoch, 0, 1); sp.ErrorCode != 0 {
		t.Fatalf("produce to enrolled partition: %+v", sp)
	}

	// Producer errors per partition; unknown partitions answer alone.
	wantCode(t, "verify old epoch", f.addTxnV4(4, "v", pid, epoch-1, true, "t", 0)[0], kerr.ProducerFenced)
	wantCode(t, "verify wrong pid", f.addTxnV4(4, "v", pid+1, epoch, true, "t", 0)[0], kerr.InvalidProducerIDMapping)
	wantCode(t, "verify unknown id", f.addTxnV4(4, "nope", pid, epoch, true, "t", 0)[0], kerr.InvalidProducerIDMapping)
	codes = f.addTxnV4(4, "v", pid, epoch, false, "t", 1, 9)
	wantCode(t, "add p1 beside unknown", codes[0], kerr.OperationNotAttempted)
	wantCode(t, "add unknown p9", codes[1], kerr.UnknownTopicOrPartition)
	wantCode(t, "p1 not added", f.addTxnV4(4, "v", pid, epoch, true, "t", 1)[0], kerr.InvalidTxnState)

	// After commit nothing is enrolled any more.
	wantCode(t, "commit", f.endTxn("v", pid, epoch, true), nil)
	wantCode(t, "verify after commit", f.addTxnV4(4, "v", pid, epoch, true, "t", 0)[0], kerr.InvalidTxnState)
}
