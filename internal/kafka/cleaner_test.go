package kafka

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchAllRecords fetches partition 0 from offset 0 up to the high watermark
// and returns offset -> key of every record.
func fetchAllRecords(t *testing.T, f *brokerFixture, topic string) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	hwm := f.b.partition(topic, 0).HighWatermark()
	for off := int64(0); off < hwm; {
		fp := f.fetch(topic, 0, off, 1<<20)
		wantCode(t, "fetch", fp.ErrorCode, nil)
		if len(fp.RecordBatches) == 0 {
			t.Fatalf("fetch at %d below hwm %d returned nothing", off, hwm)
		}
		err := storage.SplitBatches(fp.RecordBatches, func(b []byte) error {
			h, _ := storage.ParseBatchHeader(b)
			off = h.NextOffset()
			return storage.DecodeRecords(b, storage.Decompress, func(r *kmsg.Record) error {
				out[h.BaseOffset+int64(r.OffsetDelta)] = string(r.Key)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestCleanerCompactsTopic(t *testing.T) {
	f := newFixture(t)
	f.createTopic("cmp", 1, map[string]string{"segment.bytes": "1000", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
	f.createTopic("plain", 1, smallSegments)
	old := time.Now().Add(-time.Hour).UnixMilli()
	hwm := f.produceN("cmp", 12, old) // keys "0".."9" in every batch
	f.produceN("plain", 12, old)
	plainSize := f.b.partition("plain", 0).Log().Size()
	segs := f.b.partition("cmp", 0).Log().Segments()
	cleanEnd := segs[len(segs)-1].Base

	f.b.sweepCleaner(context.Background(), time.Now())

	if st := f.b.Cleaner(); st.Runs != 1 || st.RecordsRemoved == 0 || st.BytesReclaimed == 0 {
		t.Fatalf("cleaner stats %+v", st)
	}
	if f.b.partition("plain", 0).Log().Size() != plainSize {
		t.Fatal("delete-policy topic was compacted")
	}
	got := fetchAllRecords(t, f, "cmp")
	// Below cleanEnd only the last occurrence of each key survives, at the
	// offset it was produced at (key = offset % 10 in produceN's batches).
	for off := int64(0); off < hwm; off++ {
		key, ok := got[off]
		latest := off >= cleanEnd-10 || off >= cleanEnd
		if ok != latest {
			t.Fatalf("offset %d present=%v, want %v (clean end %d)", off, ok, latest, cleanEnd)
		}
		if ok && key != string(rune('0'+off%10)) {
			t.Fatalf("offset %d has key %q", off, key)
		}
	}
	// A fetch at a removed offset starts at the next survivor.
	fp := f.fetch("cmp", 0, 3, 1<<20)
	if h, _ := storage.ParseBatchHeader(fp.RecordBatches); h.NextOffset() <= 3 {
		t.Fatalf("fetch at removed offset 3 returned batch ending at %d", h.NextOffset())
	}
	// Compacted data survives a crash and restart.
	f = f.reopen(true)
	if again := fetchAllRecords(t, f, "cmp"); len(again) != len(got) {
		t.Fatalf("after crash %d records, before %d", len(again), len(got))
	}
}

// A compacted idempotent producer's batch whose records were all superseded
// keeps its header (zero records), so after a crash (no producer snapshot)
// the state rebuilt from the log accepts the producer's next sequence.
func TestCleanerKeepsProducerState(t *testing.T) {
	f := newFixture(t)
	f.createTopic("cmpp", 1, map[string]string{"segment.bytes": "1000", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
	old := time.Now().Add(-time.Hour).UnixMilli()
	spec := batchSpec{n: 10, pid: 1000, epoch: 2, seq: 0, ts: old, valueSize: 10}
	f.mustProduce("cmpp", 0, makeRecordBatch(t, spec))
	f.produceN("cmpp", 12, old) // the same keys "0".."9": the producer's records are all superseded

	f.b.sweepCleaner(context.Background(), time.Now())

	fp := f.fetch("cmpp", 0, 0, 1<<20)
	wantCode(t, "fetch", fp.ErrorCode, nil)
	h, err := storage.ParseBatchHeader(fp.RecordBatches)
	if err != nil || h.BaseOffset != 0 || h.RecordCount != 0 || h.ProducerID != 1000 || h.ProducerEpoch != 2 || h.LastOffsetDelta != 9 {
		t.Fatalf("first batch after compaction %+v (%v), want the producer's empty header", h, err)
	}
	if got := fetchAllRecords(t, f, "cmpp"); len(got) == 0 || got[0] != "" {
		t.Fatalf("records after compaction: %v, want none at offset 0", got)
	}

	f = f.reopen(true) // no producers.snapshot: state comes from the batch headers
	spec.seq = 10
	if sp := f.produce("cmpp", 0, makeRecordBatch(t, spec)); sp.ErrorCode != 0 {
		t.Fatalf("next sequence after compaction and crash: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
}

func TestProduceNullKeyToCompactedTopic(t *testing.T) {
	f := newFixture(t)
	f.createTopic("cmp", 1, map[string]string{"cleanup.policy": "compact,delete"})
	r := kmsg.Record{Value: []byte("v")}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	recs := r.AppendTo(nil)
	rb := kmsg.RecordBatch{
		Length: int32(storage.BatchHeaderSize - 12 + len(recs)), PartitionLeaderEpoch: -1, Magic: 2,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: recs,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	wantCode(t, "null key", f.produce("cmp", 0, out).ErrorCode, kerr.InvalidRecord)
	f.mustProduce("cmp", 0, makeRecordBatch(t, plainBatch(3)))
}
