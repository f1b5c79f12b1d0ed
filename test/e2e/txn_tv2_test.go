package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnVersions: with transaction.version 2 (the default) franz-go runs
// KIP-890 part 2 transactions: every EndTxn bumps the producer epoch, and a
// produce of the finished transaction's epoch is fenced at the partition.
// With --transaction-version 1 the same client keeps its epoch. Both read
// back exactly the committed records.
func TestTxnVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tv   int16
		args []string
	}{{"v2-default", 2, nil}, {"v1", 1, []string{"--transaction-version", "1"}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := StartBroker(t, tc.args...)
			clientsCreateTopic(t, kadm.NewClient(b.Client(t)), "txn-tv", 2, nil)
			ctx := Ctx(t, 30*time.Second)

			rc := dialRaw(t, b.Addr)
			av := kmsg.NewPtrApiVersionsRequest()
			av.SetVersion(3)
			av.ClientSoftwareName, av.ClientSoftwareVersion = "e2e", "1"
			resp := rc.roundTrip(av).(*kmsg.ApiVersionsResponse)
			if len(resp.FinalizedFeatures) != 1 || resp.FinalizedFeatures[0].Name != "transaction.version" || resp.FinalizedFeatures[0].MaxVersionLevel != tc.tv {
				t.Fatalf("finalized features %+v, want transaction.version %d", resp.FinalizedFeatures, tc.tv)
			}

			cl := b.Client(t, kgo.TransactionalID("tv-"+tc.name), kgo.DefaultProduceTopic("txn-tv"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			pid0, epoch0, err := cl.ProducerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			txnProduce(t, cl, "txn-tv", "c", 4, true)
			txnProduce(t, cl, "txn-tv", "a", 4, false)
			txnProduce(t, cl, "txn-tv", "d", 2, true)
			pid, epoch, err := cl.ProducerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantEpoch := epoch0
			if tc.tv == 2 {
				wantEpoch = epoch0 + 3 // one bump per EndTxn
			}
			if pid != pid0 || epoch != wantEpoch {
				t.Fatalf("producer %d/%d after three transactions, started at %d/%d; want epoch %d", pid, epoch, pid0, epoch0, wantEpoch)
			}
			want := append(txnValues("c", 4), txnValues("d", 2)...)
			slices.Sort(want)
			if got := txnConsume(t, b, "txn-tv", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
				t.Fatalf("read_committed %v, want %v", got, want)
			}
			if tc.tv < 2 {
				return
			}
			// A late produce of a finished transaction (its epoch, produce
			// v12, which enrols partitions itself) is fenced, not added to
			// a new transaction.
			before := rc.latestOffset("txn-tv", 0)
			req := produceRequest(12, "txn-tv", 0, idemBatchAttrs(pid, epoch-1, 100, 1, "late", 0x10))
			req.TransactionID = kmsg.StringPtr("tv-" + tc.name)
			code := rc.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
			if code != kerr.InvalidProducerEpoch.Code {
				t.Errorf("late produce of an old epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
			}
			if after := rc.latestOffset("txn-tv", 0); after != before {
				t.Errorf("late produce wrote: end offset %d -> %d", before, after)
			}
		})
	}
}
