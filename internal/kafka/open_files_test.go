package kafka

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPartitionsBeyondFileBudget: with a budget of 40 open files, 200
// partitions are created, produced to and read back; idle ones are closed
// (least recently used first) and reopened on use with their data and
// their idempotent-producer state; a restart opens none of them until used,
// and a kill loses nothing acknowledged.
func TestPartitionsBeyondFileBudget(t *testing.T) {
	const budget, topics, per = 40, 2, 100
	mod := func(o *Options) { o.MaxOpenFiles = budget }
	f := openFixture(t, t.TempDir(), mod)
	f.createTopic("a", per, nil)
	f.createTopic("b", per, nil)
	if n := f.b.files.Stats().Partitions; n != 0 {
		t.Fatalf("%d partitions open right after creating them, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "a-0", "partition.metadata")); err != nil {
		t.Fatalf("CreateTopics made no partition directory: %v", err)
	}
	// The empty first segment is created with the directory (off the
	// produce path), but nothing is open.
	if st, err := os.Stat(filepath.Join(f.dir, "a-0", "00000000000000000000.log")); err != nil || st.Size() != 0 {
		t.Fatalf("CreateTopics made no empty first segment: %v", err)
	}
	pid := initPID(f, -1, -1, nil).ProducerID
	ends := map[string]int64{}
	for round := range 2 {
		for _, topic := range []string{"a", "b"} {
			for p := range int32(per) {
				s := plainBatch(2)
				if p == 7 {
					s = batchSpec{n: 2, pid: pid, epoch: 0, seq: int32(2 * round), valueSize: 10}
				}
				f.mustProduce(topic, p, makeRecordBatch(t, s))
				ends[key(topic, p)] += 2
			}
			f.b.files.Evict()
			if st := f.b.files.Stats(); st.Open > budget {
				t.Fatalf("after producing to %s: %d files open, budget %d", topic, st.Open, budget)
			}
		}
	}
	if st := f.b.files.Stats(); st.Evicted == 0 {
		t.Fatalf("nothing was evicted: %+v", st)
	}
	// A producer's duplicate is still recognised after its partition was
	// closed and reopened (the producer snapshot went with the close).
	if err := f.b.partition("a", 7).Close(); err != nil {
		t.Fatal(err)
	}
	dup := f.produce("a", 7, makeRecordBatch(t, batchSpec{n: 2, pid: pid, epoch: 0, seq: 2, valueSize: 10}))
	if dup.ErrorCode != 0 || dup.BaseOffset != 2 {
		t.Fatalf("duplicate after reopen: code %d base %d, want 0 and 2", dup.ErrorCode, dup.BaseOffset)
	}
	check := func(f *brokerFixture) {
		t.Helper()
		for _, topic := range []string{"a", "b"} {
			for p := range int32(per) {
				sp := f.fetch(topic, p, 0, 1<<20)
				if sp.ErrorCode != 0 || sp.HighWatermark != ends[key(topic, p)] {
					t.Fatalf("%s-%d: code %d hwm %d, want %d", topic, p, sp.ErrorCode, sp.HighWatermark, ends[key(topic, p)])
				}
				var n int64
				for _, b := range batchOffsets(t, sp.RecordBatches) {
					n += b[1]
				}
				if n != ends[key(topic, p)] {
					t.Fatalf("%s-%d: fetched %d records, want %d", topic, p, n, ends[key(topic, p)])
				}
			}
			f.b.files.Evict()
		}
	}
	check(f)

	start := time.Now()
	f = f.reopen(false)
	if n := f.b.files.Stats().Partitions; n != 0 {
		t.Fatalf("%d partitions open after a restart, want 0 (opened on use)", n)
	}
	t.Logf("restart with %d partitions: %v", topics*per, time.Since(start))
	check(f)
	f = f.reopen(true) // kill: partitions open at the time are recovered on use
	check(f)
}

func key(topic string, p int32) string { return fmt.Sprintf("%s-%d", topic, p) }
