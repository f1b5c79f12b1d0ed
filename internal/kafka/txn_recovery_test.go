package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnRestartKeepsTransaction: a transaction open when the broker
// restarts (cleanly or by a crash) stays open, as in Kafka: its producer
// carries on, writes more and commits, and read_committed consumers see the
// records from before and after the restart together, none aborted. (The
// earlier behaviour, an abort with the epoch bumped at the restart, is kept
// for state written by older versions: txn/recovery_test.go.)
func TestTxnRestartKeepsTransaction(t *testing.T) {
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
		withTxn(t, g)
		if rc := g.fetchIso(0, 1); rc.LastStableOffset != 0 || rc.HighWatermark != 2 {
			t.Errorf("crash %v: after the restart lso %d hwm %d, want 0, 2 (open)", crash, rc.LastStableOffset, rc.HighWatermark)
		}
		wantCode(t, "add after the restart", g.addTxnPartition("x", pid, epoch, "t", 0), nil)
		if sp := g.txnProduce("x", pid, epoch, 2, 1); sp.ErrorCode != 0 { // 2
			t.Fatalf("crash %v: produce after the restart: %+v", crash, sp)
		}
		wantCode(t, "commit after the restart", g.endTxn("x", pid, epoch, true), nil) // marker 3
		rc := g.fetchIso(0, 1)
		if len(abortedOf(rc)) != 0 || rc.LastStableOffset != 4 || rc.HighWatermark != 4 {
			t.Errorf("crash %v: aborted %v (want none), lso %d hwm %d (want 4, 4)", crash, abortedOf(rc), rc.LastStableOffset, rc.HighWatermark)
		}
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
