package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnVerifyOnly: the KIP-890 verification form of AddPartitionsToTxn
// (v4+, VerifyOnly) through franz-go's request sharder against the binary:
// a partition the producer wrote to in its open transaction verifies, one it
// did not answers INVALID_TXN_STATE, and verifying adds nothing.
func TestTxnVerifyOnly(t *testing.T) {
	t.Parallel()
	b, _ := txnSetup(t, "txn-verify")
	ctx := Ctx(t, 30*time.Second)
	cl := b.Client(t, kgo.TransactionalID("verifier"), kgo.DefaultProduceTopic("txn-verify"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := b.Client(t)
	verify := func(p int32) int16 {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		rx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch, rx.VerifyOnly = "verifier", pid, epoch, true
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = "txn-verify", []int32{p}
		rx.Topics = append(rx.Topics, rt)
		req.Transactions = append(req.Transactions, rx)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil {
			t.Fatalf("verify p%d: %v", p, err)
		}
		if resp.Version < 4 || len(resp.Transactions) != 1 || len(resp.Transactions[0].Topics) != 1 {
			t.Fatalf("verify p%d: v%d answer %+v", p, resp.Version, resp)
		}
		return resp.Transactions[0].Topics[0].Partitions[0].ErrorCode
	}
	if code := verify(0); code != 0 {
		t.Errorf("partition written in the transaction: %v", kerr.ErrorForCode(code))
	}
	for range 2 { // the second time shows the first verification added nothing
		if code := verify(1); code != kerr.InvalidTxnState.Code {
			t.Errorf("partition not in the transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}
