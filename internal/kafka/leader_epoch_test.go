package kafka

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
	// The checkpoint is written when the history changes, not by the
	// first append nor a close: "epoch 0 from the start" is what every
	// open without a file derives.
	path := filepath.Join(partitionDir(f.dir, "le", 0), partition.LeaderEpochFile)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("leader epoch checkpoint written by the first appends: %v", err)
	}
	f.close()
	f = f.reopen(false)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("leader epoch checkpoint written by a close: %v", err)
	}
	if got := f.b.partition("le", 0).LeaderEpochs(); len(got) != 1 || got[0] != (partition.EpochEntry{Epoch: 0, Start: 0}) {
		t.Fatalf("derived after restart: %v", got)
	}

	// A damaged checkpoint is rebuilt (epoch 0 from the log start).
	f.close()
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	f = f.reopen(false)
	p := f.b.partition("le", 0)
	if got := p.LeaderEpochs(); len(got) != 1 || got[0] != (partition.EpochEntry{Epoch: 0, Start: 0}) {
		t.Fatalf("after restart: %v", got)
	}
	p.BumpLeaderEpoch(2)
	f.mustProduce("le", 0, makeRecordBatch(t, plainBatch(1)))
	if got := p.LeaderEpochs(); len(got) != 2 || got[1] != (partition.EpochEntry{Epoch: 2, Start: 5}) {
		t.Fatalf("after bump: %v", got)
	}
	if p.LeaderEpoch() != 2 {
		t.Errorf("leaderEpoch = %d", p.LeaderEpoch())
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
	f.b.partition("o", 0).BumpLeaderEpoch(3)
	wantCode(t, "older current epoch", f.offsetForLeaderEpoch("o", 0, 1, 0, 4).ErrorCode, kerr.FencedLeaderEpoch)
	wantCode(t, "unknown partition", f.offsetForLeaderEpoch("o", 5, -1, 0, 4).ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown topic", f.offsetForLeaderEpoch("nope", 0, -1, 0, 4).ErrorCode, kerr.UnknownTopicOrPartition)
}

// TestLeaderEpochsCarried: Metadata, ListOffsets and fetch use the
// partition's epoch once it changes.
func TestLeaderEpochsCarried(t *testing.T) {
	f := newFixture(t)
	f.createTopic("c", 1, nil)
	f.b.partition("c", 0).BumpLeaderEpoch(4)
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

// DeleteRecords trims the checkpoint; a checkpoint left untrimmed (a crash
// between the two) is trimmed when the partition opens.
func TestLeaderEpochTrimmedWithLogStart(t *testing.T) {
	f := newFixture(t)
	f.createTopic("let", 1, smallSegments)
	f.produceN("let", 3, 0)
	p := f.b.partition("let", 0)
	p.BumpLeaderEpoch(2)
	hwm := f.produceN("let", 3, 0) // epoch 2 from offset 30
	if got := p.LeaderEpochs(); !slices.Equal(got, []partition.EpochEntry{{Epoch: 0, Start: 0}, {Epoch: 2, Start: 30}}) {
		t.Fatalf("before: %v", got)
	}
	wantCode(t, "delete records", f.deleteRecords("let", 0, 12).ErrorCode, nil)
	if got := p.LeaderEpochs(); !slices.Equal(got, []partition.EpochEntry{{Epoch: 0, Start: 12}, {Epoch: 2, Start: 30}}) {
		t.Fatalf("after DeleteRecords to 12: %v", got)
	}
	path := filepath.Join(partitionDir(f.dir, "let", 0), partition.LeaderEpochFile)
	if raw, err := os.ReadFile(path); err != nil || string(raw) != "0\n2\n0 12\n2 30\n" {
		t.Fatalf("checkpoint = %q, %v", raw, err)
	}
	if _, _, err := p.Log().SetLogStartOffset(40); err != nil { // as if the trim were lost in a crash
		t.Fatal(err)
	}
	f = f.reopen(true)
	p = f.b.partition("let", 0)
	if got := p.LeaderEpochs(); !slices.Equal(got, []partition.EpochEntry{{Epoch: 2, Start: 40}}) {
		t.Fatalf("after reopen with start 40: %v", got)
	}
	got := f.offsetForLeaderEpoch("let", 0, -1, 2, 4)
	if got.ErrorCode != 0 || got.LeaderEpoch != 2 || got.EndOffset != hwm {
		t.Fatalf("OffsetForLeaderEpoch(2) = %+v, want 2/%d", got, hwm)
	}
}
