package e2e

// Log compaction with real clients: keyed data produced by franz-go to a
// cleanup.policy=compact topic with small segments is compacted by the
// broker's cleaner (it runs with the retention sweep, so a short
// --log-retention-check-interval-ms drives it); consumers see exactly the
// latest record per key below the cleaned boundary plus everything after it,
// each at its original offset, also after a kill -9 and restart. Records
// without a key are refused with INVALID_RECORD.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compactionConsume reads partition 0 from the start up to end and returns
// offset -> key, checking that every value names its own offset.
func compactionConsume(t *testing.T, b *Broker, topic string, end int64) map[int64]string {
	t.Helper()
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx := Ctx(t, 20*time.Second)
	got := map[int64]string{}
	last := int64(-1)
	for last < end-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to %d of %s, want up to %d", last, topic, end-1)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			if want := fmt.Sprintf("v-%d-", r.Offset); !strings.HasPrefix(string(r.Value), want) {
				t.Fatalf("record at %d has value %.12q: offsets not preserved", r.Offset, r.Value)
			}
			got[r.Offset], last = string(r.Key), r.Offset
		})
	}
	return got
}

// compactionExpected: the records at or after boundary, plus the latest of
// each key below it (record i has key k-<i%7>).
func compactionExpected(boundary, end int64) map[int64]string {
	want := map[int64]string{}
	latest := map[string]int64{}
	for i := int64(0); i < end; i++ {
		k := fmt.Sprintf("k-%d", i%7)
		if i >= boundary {
			want[i] = k
		} else {
			latest[k] = i
		}
	}
	for k, i := range latest {
		want[i] = k
	}
	return want
}

// compactionCheck verifies got is exactly the survivors of compacting some
// prefix of the log, and that a real prefix was compacted.
func compactionCheck(t *testing.T, got map[int64]string, end int64) {
	t.Helper()
	if int64(len(got)) >= end {
		t.Fatalf("nothing compacted: %d records of %d", len(got), end)
	}
	for boundary := int64(1); boundary <= end; boundary++ {
		want := compactionExpected(boundary, end)
		if len(want) != len(got) {
			continue
		}
		same := true
		for off, k := range want {
			if got[off] != k {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	t.Fatalf("consumed records are not the survivors of any compaction: %v", got)
}

func TestCompactionEndToEnd(t *testing.T) {
	b := StartBroker(t, "--log-retention-check-interval-ms", "100")
	adm := clientsAdmin(t, b)
	cl := b.Client(t, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	const topic = "compacted"
	clientsCreateTopic(t, adm, topic, 1, map[string]*string{
		"cleanup.policy": kmsg.StringPtr("compact"), "segment.bytes": kmsg.StringPtr("2000"),
		"min.cleanable.dirty.ratio": kmsg.StringPtr("0.01"),
	})
	// Keyless records are refused on a compacted topic.
	err := cl.ProduceSync(Ctx(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte("v-no-key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless produce: %v, want INVALID_RECORD", err)
	}
	const n = 400
	retentionProduce(t, cl, topic, 0, n) // key k-<i%7>, value v-<offset>-...
	CheckFor(t, 15*time.Second, func() error {
		if r := retentionMetric(t, b, "chronik_cleaner_records_removed_total"); r < n/2 {
			return fmt.Errorf("cleaner removed %v records", r)
		}
		if retentionMetric(t, b, "chronik_cleaner_runs_total") < 1 || retentionMetric(t, b, "chronik_cleaner_bytes_reclaimed_total") <= 0 {
			return errors.New("cleaner metrics not updated")
		}
		return nil
	})
	got := compactionConsume(t, b, topic, n)
	compactionCheck(t, got, n)

	// kill -9, restart: survivors of a compaction again, none that was not
	// there before, every latest value kept, and appends continue at n.
	// The restarted cleaner may have compacted further: segments that were
	// durable only in the WAL become cleanable once Open fsyncs them.
	b.Kill()
	b = StartBrokerIn(t, b.DataDir, b.Args...)
	after := compactionConsume(t, b, topic, n)
	compactionCheck(t, after, n)
	for off, k := range after {
		if got[off] != k {
			t.Fatalf("after restart offset %d has key %q, before %q", off, k, got[off])
		}
	}
	for off, k := range compactionExpected(n, n) {
		if after[off] != k {
			t.Fatalf("after restart the latest %q (offset %d) is gone", k, off)
		}
	}
	cl2 := b.Client(t)
	r := &kgo.Record{Topic: topic, Key: []byte("k-0"), Value: []byte(fmt.Sprintf("v-%d-new", n))}
	if err := cl2.ProduceSync(Ctx(t, 10*time.Second), r).FirstErr(); err != nil || r.Offset != n {
		t.Fatalf("produce after restart: offset %d, %v", r.Offset, err)
	}
}
