package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnRestartAbortFencesProducer: the transaction coordinator aborts a
// transaction it finds open when the broker restarts. A producer that lived
// through the restart must then be fenced, at the coordinator and at the
// partition (the ABORT marker carries the bumped epoch); before the fix the
// abort kept the epoch, the producer's next AddPartitionsToTxn opened a new
// transaction and its EndTxn committed the rest of a half-aborted one.
func TestTxnRestartAbortFencesProducer(t *testing.T) {
	for _, crash := range []bool{false, true} {
		f := newFixture(t)
		f.createTopic("t", 1, nil)
		c := withTxn(t, f)
		pid, epoch := f.initTxn("x")
		wantCode(t, "add", f.addTxnPartition("x", pid, epoch, "t", 0), nil)
		if sp := f.txnProduce("x", pid, epoch, 0, 2); sp.ErrorCode != 0 { // 0-1, left open
			t.Fatalf("produce: %+v", sp)
		}
		c.Close()
		f.b.SetTxn(nil)
		g := f.reopen(crash)
		withTxn(t, g) // aborts: marker at 2

		wantCode(t, "add after the restart", g.addTxnPartition("x", pid, epoch, "t", 0), kerr.ProducerFenced)
		sp := g.txnProduce("x", pid, epoch, 2, 1)
		wantCode(t, "produce after the restart", sp.ErrorCode, kerr.InvalidProducerEpoch)
		wantCode(t, "commit after the restart", g.endTxn("x", pid, epoch, true), kerr.ProducerFenced)
		rc := g.fetchIso(0, 1)
		if want := [][2]int64{{pid, 0}}; !slices.Equal(abortedOf(rc), want) || rc.LastStableOffset != 3 || rc.HighWatermark != 3 {
			t.Errorf("crash %v: aborted %v (want %v), lso %d hwm %d (want 3, 3)", crash, abortedOf(rc), want, rc.LastStableOffset, rc.HighWatermark)
		}
		// KIP-588: the producer re-initialises with the epoch it had.
		req := g.initTxnAs("x", pid, epoch)
		if req.ErrorCode != 0 || req.ProducerID != pid || req.ProducerEpoch != epoch+2 {
			t.Fatalf("crash %v: re-init %+v, want %d/%d", crash, req, pid, epoch+2)
		}
		wantCode(t, "add after re-init", g.addTxnPartition("x", pid, epoch+2, "t", 0), nil)
		if sp := g.txnProduce("x", pid, epoch+2, 0, 1); sp.ErrorCode != 0 {
			t.Fatalf("crash %v: produce after re-init: %+v", crash, sp)
		}
		wantCode(t, "commit after re-init", g.endTxn("x", pid, epoch+2, true), nil)
	}
}

// initTxnAs is InitProducerId naming the producer's current id and epoch
// (KIP-360/KIP-588).
func (f *brokerFixture) initTxnAs(id string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	f.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr(id)
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return f.do(req, 4).(*kmsg.InitProducerIDResponse)
}
