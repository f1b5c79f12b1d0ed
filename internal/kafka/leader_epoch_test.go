package kafka

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLeaderEpochCheckpointFormat(t *testing.T) {
	in := []epochEntry{{0, 0}, {3, 1200}, {7, 1500}}
	raw := formatLeaderEpochs(in)
	if string(raw) != "0\n3\n0 0\n3 1200\n7 1500\n" {
		t.Fatalf("format = %q", raw)
	}
	out, err := parseLeaderEpochs(raw)
	if err != nil || len(out) != 3 || out[2] != in[2] {
		t.Fatalf("parse = %v, %v", out, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n0 0\n", "0\n1\nx y\n", "0\n2\n3 0\n1 5\n", "0\n2\n1 9\n2 5\n", "0\n1\n-1 0\n"} {
		if _, err := parseLeaderEpochs([]byte(bad)); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestLeaderEpochEndOffsetFor(t *testing.T) {
	le := &leaderEpochs{current: 7, entries: []epochEntry{{1, 10}, {3, 100}, {7, 150}}}
	tests := []struct {
		req       int32
		logStart  int64
		wantEpoch int32
		wantEnd   int64
	}{
		{7, 0, 7, 200},   // current: log end
		{3, 0, 3, 150},   // older: start of the next
		{5, 0, 3, 150},   // unknown between: largest known below
		{1, 0, 1, 100},   //
		{0, 0, -1, -1},   // below the first
		{8, 0, -1, -1},   // above the current
		{-1, 0, -1, -1},  // undefined
		{1, 120, -1, -1}, // epoch 1 ended before the log start
		{3, 120, 3, 150},
	}
	for _, tt := range tests {
		e, end := le.endOffsetFor(tt.req, tt.logStart, 200)
		if e != tt.wantEpoch || end != tt.wantEnd {
			t.Errorf("endOffsetFor(%d, start %d) = %d, %d; want %d, %d", tt.req, tt.logStart, e, end, tt.wantEpoch, tt.wantEnd)
		}
	}
}

// TestLeaderEpochStampedAndCheckpointed: appended batches carry epoch 0
// (whatever the producer sent), the checkpoint names epoch 0 from offset 0,
// survives a restart, and a bumped epoch starts at the next append.
func TestLeaderEpochStampedAndCheckpointed(t *testing.T) {
	f := newFixture(t)
	f.createTopic("le", 1, nil)
	f.mustProduce("le", 0, makeRecordBatch(t, plainBatch(3))) // PartitionLeaderEpoch -1 in the request
	f.mustProduce("le", 0, makeRecordBatch(t, plainBatch(2)))
	sp := f.fetch("le", 0, 0, 1<<20)
	n := 0
	storage.SplitBatches(sp.RecordBatches, func(b []byte) error {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if rb.PartitionLeaderEpoch != 0 {
			t.Errorf("batch at %d has leader epoch %d, want 0", rb.FirstOffset, rb.PartitionLeaderEpoch)
		}
		if _, err := storage.ValidateBatch(b); err != nil {
			t.Errorf("stamped batch invalid: %v", err)
		}
		n++
		return nil
	})
	if n != 2 {
		t.Fatalf("fetched %d batches, want 2", n)
	}
	path := filepath.Join(partitionDir(f.dir, "le", 0), leaderEpochFile)
	raw, err := os.ReadFile(path)
	if err != nil || string(raw) != "0\n1\n0 0\n" {
		t.Fatalf("checkpoint = %q, %v", raw, err)
	}

	// A damaged checkpoint is rebuilt (epoch 0 from the log start).
	f.close()
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	f = f.reopen(false)
	p := f.b.partition("le", 0)
	if got := p.epochs.snapshot(); len(got) != 1 || got[0] != (epochEntry{0, 0}) {
		t.Fatalf("after restart: %v", got)
	}
	p.epochs.bump(2)
	f.mustProduce("le", 0, makeRecordBatch(t, plainBatch(1)))
	if got := p.epochs.snapshot(); len(got) != 2 || got[1] != (epochEntry{2, 5}) {
		t.Fatalf("after bump: %v", got)
	}
	if p.leaderEpoch() != 2 {
		t.Errorf("leaderEpoch = %d", p.leaderEpoch())
	}
	// OffsetForLeaderEpoch now: epoch 0 ends at 5, epoch 2 at the log end.
	for _, tt := range []struct {
		req, wantEpoch int32
		wantEnd        int64
	}{{0, 0, 5}, {1, 0, 5}, {2, 2, 6}, {3, -1, -1}} {
		got := f.offsetForLeaderEpoch("le", 0, -1, tt.req, 4)
		if got.ErrorCode != 0 || got.LeaderEpoch != tt.wantEpoch || got.EndOffset != tt.wantEnd {
			t.Errorf("epoch %d: %+v, want %d/%d", tt.req, got, tt.wantEpoch, tt.wantEnd)
		}
	}
}

func (f *brokerFixture) offsetForLeaderEpoch(topic string, partition, current, epoch int32, v int16) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = partition, current, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, v).(*kmsg.OffsetForLeaderEpochResponse)
	return resp.Topics[0].Partitions[0]
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	f := newFixture(t)
	f.createTopic("o", 1, nil)
	// Empty log: the current epoch ends at 0.
	if got := f.offsetForLeaderEpoch("o", 0, -1, 0, 2); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 0 {
		t.Errorf("empty: %+v", got)
	}
	f.mustProduce("o", 0, makeRecordBatch(t, plainBatch(4)))
	for _, v := range []int16{2, 3, 4} {
		if got := f.offsetForLeaderEpoch("o", 0, 0, 0, v); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 4 {
			t.Errorf("v%d: %+v", v, got)
		}
	}
	got := f.offsetForLeaderEpoch("o", 0, 1, 0, 4)
	wantCode(t, "newer current epoch", got.ErrorCode, kerr.UnknownLeaderEpoch)
	if got.LeaderEpoch != -1 || got.EndOffset != -1 {
		t.Errorf("error answer carries %d/%d", got.LeaderEpoch, got.EndOffset)
	}
	f.b.partition("o", 0).epochs.bump(3)
	wantCode(t, "older current epoch", f.offsetForLeaderEpoch("o", 0, 1, 0, 4).ErrorCode, kerr.FencedLeaderEpoch)
	wantCode(t, "unknown partition", f.offsetForLeaderEpoch("o", 5, -1, 0, 4).ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown topic", f.offsetForLeaderEpoch("nope", 0, -1, 0, 4).ErrorCode, kerr.UnknownTopicOrPartition)
}

// TestLeaderEpochsCarried: Metadata, ListOffsets and fetch use the
// partition's epoch once it changes.
func TestLeaderEpochsCarried(t *testing.T) {
	f := newFixture(t)
	f.createTopic("c", 1, nil)
	f.b.partition("c", 0).epochs.bump(4)
	md := f.do(metadataReq("c"), 12).(*kmsg.MetadataResponse)
	if e := md.Topics[0].Partitions[0].LeaderEpoch; e != 4 {
		t.Errorf("metadata epoch %d", e)
	}
	if lo := f.listOffset("c", 0, -1); lo.LeaderEpoch != 4 {
		t.Errorf("list offsets epoch %d", lo.LeaderEpoch)
	}
	req := fetchReq("c", [16]byte{}, 0, 0, 1<<20)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	resp := f.do(req, 12).(*kmsg.FetchResponse)
	wantCode(t, "fetch with old epoch", resp.Topics[0].Partitions[0].ErrorCode, kerr.FencedLeaderEpoch)
}

// FuzzParseLeaderEpochs: the checkpoint decoder never panics, and what it
// accepts is ascending and re-encodes to something it reads back the same.
func FuzzParseLeaderEpochs(f *testing.F) {
	f.Add([]byte("0\n2\n0 0\n3 1200\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\n-1 5\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		entries, err := parseLeaderEpochs(raw)
		if err != nil {
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].epoch <= entries[i-1].epoch || entries[i].start < entries[i-1].start {
				t.Fatalf("accepted non-ascending %v", entries)
			}
		}
		again, err := parseLeaderEpochs(formatLeaderEpochs(entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}

// truncateFromStart follows Kafka's LeaderEpochFileCache.truncateFromStart:
// entries at or below the new start go, the latest of them stays with its
// start moved up, and the file is rewritten (and parses back).
func TestLeaderEpochTruncateFromStart(t *testing.T) {
	dir := t.TempDir()
	le := &leaderEpochs{path: filepath.Join(dir, leaderEpochFile), current: 7}
	le.entries = []epochEntry{{1, 10}, {3, 100}, {7, 150}}
	if err := le.write(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		start int64
		want  []epochEntry
	}{
		{5, []epochEntry{{1, 10}, {3, 100}, {7, 150}}}, // below the first: nothing
		{10, []epochEntry{{1, 10}, {3, 100}, {7, 150}}},
		{50, []epochEntry{{1, 50}, {3, 100}, {7, 150}}},
		{100, []epochEntry{{3, 100}, {7, 150}}},
		{120, []epochEntry{{3, 120}, {7, 150}}},
		{400, []epochEntry{{7, 400}}}, // past every entry: the latest epoch from the start
		{300, []epochEntry{{7, 400}}}, // never back
	} {
		if err := le.truncateFromStart(tt.start); err != nil {
			t.Fatal(err)
		}
		if got := le.snapshot(); !slices.Equal(got, tt.want) {
			t.Fatalf("truncateFromStart(%d) = %v, want %v", tt.start, got, tt.want)
		}
		raw, err := os.ReadFile(le.path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseLeaderEpochs(raw); err != nil || !slices.Equal(got, tt.want) {
			t.Fatalf("checkpoint after truncateFromStart(%d) = %v, %v", tt.start, got, err)
		}
	}
	// A failed write leaves the entries as they were, for the next call.
	le.path = filepath.Join(dir, "missing", leaderEpochFile)
	if err := le.truncateFromStart(500); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if got := le.snapshot(); !slices.Equal(got, []epochEntry{{7, 400}}) {
		t.Fatalf("after a failed write: %v", got)
	}
}

// DeleteRecords trims the checkpoint; a checkpoint left untrimmed (a crash
// between the two) is trimmed when the partition opens.
func TestLeaderEpochTrimmedWithLogStart(t *testing.T) {
	f := newFixture(t)
	f.createTopic("let", 1, smallSegments)
	f.produceN("let", 3, 0)
	p := f.b.partition("let", 0)
	p.epochs.bump(2)
	hwm := f.produceN("let", 3, 0) // epoch 2 from offset 30
	if got := p.epochs.snapshot(); !slices.Equal(got, []epochEntry{{0, 0}, {2, 30}}) {
		t.Fatalf("before: %v", got)
	}
	wantCode(t, "delete records", f.deleteRecords("let", 0, 12).ErrorCode, nil)
	if got := p.epochs.snapshot(); !slices.Equal(got, []epochEntry{{0, 12}, {2, 30}}) {
		t.Fatalf("after DeleteRecords to 12: %v", got)
	}
	path := filepath.Join(partitionDir(f.dir, "let", 0), leaderEpochFile)
	if raw, err := os.ReadFile(path); err != nil || string(raw) != "0\n2\n0 12\n2 30\n" {
		t.Fatalf("checkpoint = %q, %v", raw, err)
	}
	if _, _, err := p.log.SetLogStartOffset(40); err != nil { // as if the trim were lost in a crash
		t.Fatal(err)
	}
	f = f.reopen(true)
	p = f.b.partition("let", 0)
	if got := p.epochs.snapshot(); !slices.Equal(got, []epochEntry{{2, 40}}) {
		t.Fatalf("after reopen with start 40: %v", got)
	}
	got := f.offsetForLeaderEpoch("let", 0, -1, 2, 4)
	if got.ErrorCode != 0 || got.LeaderEpoch != 2 || got.EndOffset != hwm {
		t.Fatalf("OffsetForLeaderEpoch(2) = %+v, want 2/%d", got, hwm)
	}
}
