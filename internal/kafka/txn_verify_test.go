package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/group"

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

// offsetFetchStable asks for group g's offset of t/0 with require_stable at
// version v (7: one group; 8+: the groups array).
func (f *brokerFixture) offsetFetchStable(v int16, g string, stable bool) (int16, int64) {
	f.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = stable
	if v < 8 {
		req.Group = g
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		req.Topics = append(req.Topics, rt)
		sp := f.do(req, v).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		return sp.ErrorCode, sp.Offset
	}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = g
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = "t", []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	sp := f.do(req, v).(*kmsg.OffsetFetchResponse).Groups[0].Topics[0].Partitions[0]
	return sp.ErrorCode, sp.Offset
}

// TestOffsetFetchRequireStable: offsets staged by an unfinished transaction
// make require_stable fetches answer UNSTABLE_OFFSET_COMMIT (KIP-447);
// other fetches see the last committed offset; the answer is stable again
// once the transaction commits or aborts.
func TestOffsetFetchRequireStable(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.openGroups(group.Options{OffsetsRetention: time.Hour})
	withTxn(t, f)
	pid, epoch := f.initTxn("s")

	stage := func(off int64) {
		t.Helper()
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "s", pid, epoch, "g"
		wantCode(t, "AddOffsetsToTxn", f.do(ao, 3).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
		tc := kmsg.NewPtrTxnOffsetCommitRequest()
		tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = "s", "g", pid, epoch, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = off
		rt.Partitions = append(rt.Partitions, rp)
		tc.Topics = append(tc.Topics, rt)
		wantCode(t, "TxnOffsetCommit", f.do(tc, 3).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	}
	check := func(what string, wantStable *kerr.Error, wantOff int64) {
		t.Helper()
		for _, v := range []int16{7, 8} {
			code, off := f.offsetFetchStable(v, "g", true)
			wantCode(t, fmt.Sprintf("%s: v%d require_stable", what, v), code, wantStable)
			if wantStable == nil && off != wantOff {
				t.Fatalf("%s: v%d require_stable offset %d, want %d", what, v, off, wantOff)
			}
			code, off = f.offsetFetchStable(v, "g", false)
			if code != 0 || off != wantOff {
				t.Fatalf("%s: v%d offset %d (%v), want %d", what, v, off, kerr.ErrorForCode(code), wantOff)
			}
			if code, _ := f.offsetFetchStable(v, "other", true); code != 0 {
				t.Fatalf("%s: another group is unstable: %v", what, kerr.ErrorForCode(code))
			}
		}
	}

	check("nothing staged", nil, -1)
	stage(5)
	check("staged", kerr.UnstableOffsetCommit, -1)
	wantCode(t, "commit", f.endTxn("s", pid, epoch, true), nil)
	check("committed", nil, 5)
	stage(9)
	check("staged again", kerr.UnstableOffsetCommit, 5)
	wantCode(t, "abort", f.endTxn("s", pid, epoch, false), nil)
	check("aborted", nil, 5)
}
