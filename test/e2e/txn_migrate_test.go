package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const txnStateTopic = "__transaction_state"

// txnV1OpenStart is when the open transaction of
// testdata/datadir-txn-v1.tar.gz started (its timeout is 15 minutes).
var txnV1OpenStart = time.UnixMilli(1796619312037)

// TestTxnMigrateDataDirFromPreviousRelease starts the broker on a data dir
// written by the release before __transaction_state was an internal topic
// (chronik-server at 390b42d, driven by franz-go 1.22 with transaction
// version 2; testdata/datadir-txn-v1.tar.gz): topic "events" (2 partitions);
// "tx-committed" (producer 0) committed 3 records to events-0 and offset 3
// of events-0 for group "etl"; "tx-aborted" (producer 1) aborted one record
// in events-1; "tx-open" (producer 2, epoch 0, timeout 15 minutes) was left
// Ongoing with 2 records in events-1 and offset 5 staged for group
// "etl-open". After the migration DescribeTransactions shows them, the open
// transaction (long past its timeout) is aborted by the broker with its
// epoch bumped, read_committed readers see only the committed records, and
// __transaction_state is an internal topic whose records Kafka's schemas
// decode; again after a kill -9 and restart.
func TestTxnMigrateDataDirFromPreviousRelease(t *testing.T) {
	if time.Until(txnV1OpenStart.Add(15*time.Minute)) > -5*time.Second {
		t.Skip("the fixture's open transaction has not reached its timeout yet")
	}
	dir := t.TempDir()
	untar(t, "testdata/datadir-txn-v1.tar.gz", dir)
	check := func(b *Broker) {
		t.Helper()
		adm := clientsAdmin(t, b)
		ctx := Ctx(t, 30*time.Second)
		CheckFor(t, 15*time.Second, func() error {
			d, err := adm.DescribeTransactions(ctx, "tx-committed", "tx-aborted", "tx-open")
			if err != nil {
				return err
			}
			got := map[string]string{}
			for _, s := range d.Sorted() {
				got[s.TxnID] = fmt.Sprintf("%s %d/%d %d", s.State, s.ProducerID, s.ProducerEpoch, s.TimeoutMillis)
			}
			want := map[string]string{
				"tx-committed": "CompleteCommit 0/1 900000",
				"tx-aborted":   "CompleteAbort 1/1 900000",
				"tx-open":      "CompleteAbort 2/1 900000", // timed out: aborted with the epoch bumped
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("transactions %v, want %v", got, want)
			}
			return nil
		})
		// The aborted transaction no longer holds back read_committed.
		end, err := adm.ListEndOffsets(ctx, "events")
		if err != nil {
			t.Fatal(err)
		}
		stable, err := adm.ListCommittedOffsets(ctx, "events")
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			hwm, _ := end.Lookup("events", p)
			lso, _ := stable.Lookup("events", p)
			if lso.Offset != hwm.Offset {
				t.Fatalf("events-%d: last stable offset %d, high watermark %d", p, lso.Offset, hwm.Offset)
			}
		}
		want := txnValues("tx-committed", 3)
		if got := txnConsume(t, b, "events", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
			t.Fatalf("read_committed saw %v, want %v", got, want)
		}
		offs, err := adm.FetchOffsets(ctx, "etl")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := offs.Lookup("events", 0); o.At != 3 || o.Metadata != "meta-tx-committed" {
			t.Fatalf("etl offset %+v", o)
		}
		offs, err = adm.FetchOffsets(ctx, "etl-open")
		if err != nil {
			t.Fatal(err)
		}
		offs.Each(func(o kadm.OffsetResponse) { t.Fatalf("the aborted transaction's offset %+v", o) })
		if _, err := os.Stat(filepath.Join(dir, txnStateTopic)); err == nil {
			t.Fatal("the old transaction state directory is still there")
		}
		tds, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if td, ok := tds[txnStateTopic]; !ok || !td.IsInternal || len(td.Partitions) != 50 {
			t.Fatalf("metadata: %s listed=%v internal=%v partitions=%d", txnStateTopic, ok, td.IsInternal, len(td.Partitions))
		}
		// The last record of tx-open, read with Kafka's schemas:
		// CompleteAbort (5), partitions cleared as Kafka clears them.
		last := txnStateRecords(t, b)["tx-open"]
		if last == nil || last.State != 5 || last.ProducerID != 2 || last.ProducerEpoch != 1 || len(last.Topics) != 0 {
			t.Fatalf("last __transaction_state record of tx-open: %+v", last)
		}
	}
	migrateAndRestart(t, dir, "migrated transaction state", check)
}

// txnStateRecords reads __transaction_state to its end and returns the
// last value of each transactional id, decoded with Kafka's schemas.
func txnStateRecords(t *testing.T, b *Broker) map[string]*kmsg.TxnMetadataValue {
	t.Helper()
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 30*time.Second)
	ends, err := adm.ListEndOffsets(ctx, txnStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left++
		}
	})
	cl := b.Client(t, kgo.ConsumeTopics(txnStateTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	out := map[string]*kmsg.TxnMetadataValue{}
	done := map[int32]bool{}
	for len(done) < left && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if end, _ := ends.Lookup(r.Topic, r.Partition); r.Offset+1 >= end.Offset {
				done[r.Partition] = true
			}
			var k kmsg.TxnMetadataKey
			if err := k.ReadFrom(r.Key); err != nil {
				t.Fatalf("key at %d/%d: %v", r.Partition, r.Offset, err)
			}
			if r.Value == nil {
				delete(out, k.TransactionalID)
				return
			}
			v := new(kmsg.TxnMetadataValue)
			if err := v.ReadFrom(r.Value); err != nil {
				t.Fatalf("value at %d/%d: %v", r.Partition, r.Offset, err)
			}
			out[k.TransactionalID] = v
		})
	}
	return out
}
