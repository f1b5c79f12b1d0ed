package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderBatches appends batches to a leader partition and returns them as
// a follower would fetch them (with their offsets and leader epoch).
func fetchAll(t *testing.T, p *Partition) ([][]byte, []storage.BatchHeader) {
	t.Helper()
	var raws [][]byte
	var hdrs []storage.BatchHeader
	err := p.WithLog(func(l *storage.Log) error {
		data, err := l.Read(0, 1<<20, l.LogEndOffset(), nil)
		if err != nil {
			return err
		}
		return storage.SplitBatches(data, func(b []byte) error {
			h, err := storage.ValidateBatch(b)
			if err != nil {
				return err
			}
			raws = append(raws, bytes.Clone(b))
			hdrs = append(hdrs, h)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return raws, hdrs
}

// A follower's copy keeps the leader's offsets (gaps included), leader
// epochs and bytes, skips what it holds already, refuses an overlap, and
// ends with the same idempotent-producer and transaction state: a retried
// batch is recognised as a duplicate and an open transaction holds the
// last stable offset.
func TestAppendReplica(t *testing.T) {
	leader := openTest(t, t.TempDir())
	defer leader.Close()
	leader.BumpLeaderEpoch(4)
	appendIdem(t, leader, 7, 0, 0, 3) // offsets 0-2
	appendIdem(t, leader, 7, 0, 3, 2) // 3-4
	txn := idemBatch(9, 1, 0, 2)      // an open transaction at 5-6
	binary.BigEndian.PutUint16(txn[21:], uint16(storage.AttrTransactional))
	binary.BigEndian.PutUint32(txn[17:], crc32.Checksum(txn[21:], crc32.MakeTable(crc32.Castagnoli)))
	h, err := storage.ValidateBatch(txn)
	if err != nil {
		t.Fatal(err)
	}
	if res := leader.AppendBatches([][]byte{txn}, []storage.BatchHeader{h}); res.Err != nil {
		t.Fatal(res.Err)
	}
	raws, hdrs := fetchAll(t, leader)
	// A gap, as compaction leaves one: the last batch moved up by 10.
	gap := bytes.Clone(raws[2])
	storage.SetBaseOffset(gap, 15)
	gh := hdrs[2]
	gh.BaseOffset = 15

	fdir := t.TempDir()
	f := openTest(t, fdir)
	defer func() { f.Close() }()
	if n, _, err := f.AppendReplica(raws[:2], hdrs[:2]); err != nil || n != 2 {
		t.Fatalf("append: %d %v", n, err)
	}
	// Fetched again from an older offset: skipped, not doubled.
	if n, _, err := f.AppendReplica(raws[:2], hdrs[:2]); err != nil || n != 0 {
		t.Fatalf("append again: %d %v", n, err)
	}
	// Overlapping the end without matching a batch: refused.
	bad := bytes.Clone(raws[2])
	storage.SetBaseOffset(bad, 4)
	bh := hdrs[2]
	bh.BaseOffset = 4
	if _, _, err := f.AppendReplica([][]byte{bad}, []storage.BatchHeader{bh}); !errors.Is(err, ErrReplicaBatch) {
		t.Fatalf("overlap: %v", err)
	}
	if n, _, err := f.AppendReplica([][]byte{gap}, []storage.BatchHeader{gh}); err != nil || n != 1 {
		t.Fatalf("append after a gap: %d %v", n, err)
	}
	got, _ := fetchAll(t, f)
	want := [][]byte{raws[0], raws[1], gap}
	if len(got) != 3 {
		t.Fatalf("follower holds %d batches", len(got))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs from the leader's", i)
		}
	}
	if off, _ := f.Offsets(); off.LogEnd != 17 {
		t.Fatalf("log end %d, want 17", off.LogEnd)
	}
	// The gap survives a crash: recovery validates the tail from its
	// first byte and must not take the gap for damage.
	if _, err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	crash(t, f)
	f = openTest(t, fdir)
	if got, _ := fetchAll(t, f); len(got) != 3 || !bytes.Equal(got[2], gap) {
		t.Fatalf("after a crash the follower holds %d batches", len(got))
	}
	if e := f.LeaderEpoch(); e != 4 {
		t.Fatalf("leader epoch %d, want the leader's 4", e)
	}
	// The producer's retry of its last batch is a duplicate here too.
	res := appendIdem(t, f, 7, 0, 3, 2)
	if res.Err != nil || res.Base != 3 || res.Batches != 0 {
		t.Fatalf("retry on the follower: %+v", res)
	}
	// The open transaction holds the last stable offset at its start.
	if st := f.LastStable(); st != 15 {
		t.Fatalf("last stable %d, want 15", st)
	}
}

// The high watermark cap bounds what a replicated partition's readers see
// and is lifted with MaxInt64.
func TestHighWatermarkCap(t *testing.T) {
	p := openTest(t, t.TempDir())
	defer p.Close()
	appendIdem(t, p, 1, 0, 0, 5)
	if _, err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	p.MarkDurable(5)
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d, want 5", hw)
	}
	p.SetHighWatermarkCap(2)
	if off, _ := p.Offsets(); off.HighWatermark != 2 || off.LastStable != 2 || !p.Replicated() {
		t.Fatalf("capped: %+v", off)
	}
	p.SetHighWatermarkCap(math.MaxInt64)
	if hw := p.HighWatermark(); hw != 5 || p.Replicated() {
		t.Fatalf("uncapped: %d", hw)
	}
}

// FuzzAppendReplica: whatever batches a leader (or anything claiming to be
// one) sends a follower, with any offsets, gaps, overlaps, producer fields,
// transactional and control bits and leader epochs, AppendReplica never
// panics, refuses what would break the log (an overlap, offsets past the
// int64 range) without changing it, and what it kept comes back the same
// after a crash.
func FuzzAppendReplica(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 5, 2, 1, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 7, 2, 2, 3, 1, 1, 0})
	f.Add([]byte{0x80, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := openTest(t, dir)
		defer func() { p.Close() }()
		var end int64
		for len(data) >= 8 {
			op := data[:8]
			data = data[8:]
			n := 1 + int(op[2]%4)
			recs := make([]kmsg.Record, n)
			for i := range recs {
				recs[i] = kmsg.Record{OffsetDelta: int32(i), Key: []byte{op[3]}, Value: []byte("v")}
			}
			var raw []byte
			pid, epoch := int64(op[4]%4)-1, int16(op[5]%3)
			switch op[6] % 4 {
			case 0:
				raw = storage.EncodeBatch(time.Now().UnixMilli(), recs)
			case 1:
				raw = idemBatch(pid, epoch, int32(op[7]), n)
			case 2:
				raw = storage.EncodeTxnBatch(time.Now().UnixMilli(), recs, max(pid, 0), epoch)
			case 3:
				raw = storage.EncodeMarker(time.Now().UnixMilli(), max(pid, 0), epoch, op[7]%2 == 0)
			}
			base := end + int64(int8(op[1]))
			if op[0]&0x80 != 0 && len(data) >= 8 { // an absolute offset
				base = int64(binary.BigEndian.Uint64(data[:8]))
				data = data[8:]
			}
			storage.SetBaseOffset(raw, base)
			storage.SetLeaderEpoch(raw, int32(op[0]%4))
			binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
			h, err := storage.ValidateBatch(raw)
			if err != nil {
				continue // the fetcher drops what fails validation
			}
			before := p.LogEnd()
			nb, _, err := p.AppendReplica([][]byte{raw}, []storage.BatchHeader{h})
			after := p.LogEnd()
			switch {
			case err != nil && after != before:
				t.Fatalf("refused batch at %d moved the log end %d -> %d: %v", base, before, after, err)
			case err == nil && nb == 1 && after != h.NextOffset():
				t.Fatalf("batch %d-%d appended, log end %d", h.BaseOffset, h.LastOffset(), after)
			case err == nil && nb == 0 && after != before:
				t.Fatalf("skipped batch moved the log end")
			}
			end = after
		}
		want, _ := fetchAll(t, p)
		if _, err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		crash(t, p)
		p = openTest(t, dir)
		got, _ := fetchAll(t, p)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("after a crash %d batches, before %d", len(got), len(want))
		}
	})
}
