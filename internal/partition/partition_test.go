package partition

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openTest opens (or reopens) a partition in dir with its producer state.
func openTest(t testing.TB, dir string) *Partition {
	t.Helper()
	p, err := Open(dir, Options{Topic: "t", TopicID: metadata.TopicID{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LoadProducers(); err != nil {
		t.Fatal(err)
	}
	return p
}

// crash abandons p as a kill -9 would after its data reached the files:
// the log is closed, no producer snapshot is written.
func crash(t testing.TB, p *Partition) {
	t.Helper()
	if err := p.st.log.Close(); err != nil {
		t.Fatal(err)
	}
	p.st, p.deleted = nil, true
}

// idemBatch builds a valid batch of n records of producer pid at epoch,
// sequences from seq.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), Key: []byte{byte(i)}, Value: []byte("v")}
	}
	raw := storage.EncodeBatch(time.Now().UnixMilli(), recs)
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// appendIdem appends one idempotent batch and returns the partition's answer.
func appendIdem(t testing.TB, p *Partition, pid int64, epoch int16, seq int32, n int) AppendResult {
	t.Helper()
	raw := idemBatch(pid, epoch, seq, n)
	h, err := storage.ValidateBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	res := p.AppendBatches([][]byte{raw}, []storage.BatchHeader{h})
	if res.Err == nil {
		p.MarkDurable(p.st.log.LogEndOffset())
	}
	return res
}

// seqState is a producer's remembered batches for the checkSequence table:
// (first, last, base) triples, oldest first.
type seqState struct {
	epoch   int16
	batches [][3]int64
}

func TestCheckSequence(t *testing.T) {
	const pid = 7
	// Five batches of 2 records each: seqs 0-1 .. 8-9 at offsets 100, 102, ...
	five := seqState{epoch: 3, batches: [][3]int64{{0, 1, 100}, {2, 3, 102}, {4, 5, 104}, {6, 7, 106}, {8, 9, 108}}}
	// Six batches recorded: the oldest (0-1) has left the window.
	six := seqState{epoch: 3, batches: append(append([][3]int64{}, five.batches...), [3]int64{10, 11, 110})}
	atMax := seqState{epoch: 1, batches: [][3]int64{{math.MaxInt32 - 1, math.MaxInt32, 50}}}
	tests := []struct {
		name   string
		state  *seqState // nil: producer unknown to the partition
		epoch  int16
		first  int32
		count  int32
		dup    int64
		err    error
		notPID bool
	}{
		{name: "not idempotent", notPID: true, first: -1, count: 1, dup: -1},
		{name: "new producer seq 0", epoch: 0, first: 0, count: 3, dup: -1},
		{name: "new producer seq 5", epoch: 0, first: 5, count: 1, dup: -1, err: ErrUnknownProducerID},
		{name: "new producer high epoch seq 0", epoch: 9, first: 0, count: 1, dup: -1},
		{name: "next seq", state: &five, epoch: 3, first: 10, count: 4, dup: -1},
		{name: "duplicate newest", state: &five, epoch: 3, first: 8, count: 2, dup: 108},
		{name: "duplicate oldest in window", state: &five, epoch: 3, first: 0, count: 2, dup: 100},
		{name: "duplicate middle", state: &five, epoch: 3, first: 4, count: 2, dup: 104},
		{name: "duplicate beyond window", state: &six, epoch: 3, first: 0, count: 2, dup: -1, err: ErrOutOfOrderSequence},
		{name: "duplicate still in window of six", state: &six, epoch: 3, first: 2, count: 2, dup: 102},
		{name: "overlapping but not identical", state: &five, epoch: 3, first: 8, count: 3, dup: -1, err: ErrOutOfOrderSequence},
		{name: "gap", state: &five, epoch: 3, first: 11, count: 1, dup: -1, err: ErrOutOfOrderSequence},
		{name: "restart from 0 same epoch", state: &five, epoch: 3, first: 0, count: 5, dup: -1, err: ErrOutOfOrderSequence},
		{name: "older epoch", state: &five, epoch: 2, first: 10, count: 1, dup: -1, err: ErrInvalidProducerEpoch},
		{name: "older epoch duplicate", state: &five, epoch: 2, first: 8, count: 2, dup: -1, err: ErrInvalidProducerEpoch},
		{name: "newer epoch seq 0", state: &five, epoch: 4, first: 0, count: 1, dup: -1},
		{name: "newer epoch seq 10", state: &five, epoch: 4, first: 10, count: 1, dup: -1, err: ErrOutOfOrderSequence},
		{name: "wrap after MaxInt32", state: &atMax, epoch: 1, first: 0, count: 1, dup: -1},
		{name: "no wrap to 1", state: &atMax, epoch: 1, first: 1, count: 1, dup: -1, err: ErrOutOfOrderSequence},
		{name: "duplicate at MaxInt32", state: &atMax, epoch: 1, first: math.MaxInt32 - 1, count: 2, dup: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &state{producers: map[int64]*producerState{}}
			if tt.state != nil {
				for _, b := range tt.state.batches {
					p.recordBatch(pid, tt.state.epoch, int32(b[0]), int32(b[1]), b[2])
				}
			}
			h := storage.BatchHeader{ProducerID: pid, ProducerEpoch: tt.epoch, BaseSequence: tt.first, LastOffsetDelta: tt.count - 1, RecordCount: tt.count}
			if tt.notPID {
				h.ProducerID, h.ProducerEpoch = -1, -1
			}
			dup, err := p.checkSequence(&h)
			if dup != tt.dup || err != tt.err {
				t.Errorf("checkSequence = (%d, %v), want (%d, %v)", dup, err, tt.dup, tt.err)
			}
		})
	}
}

func TestRecordBatchWindow(t *testing.T) {
	p := &state{producers: map[int64]*producerState{}}
	for i := range 8 {
		p.recordBatch(1, 0, int32(i), int32(i), int64(i))
	}
	st := p.producers[1]
	if len(st.Batches) != producerWindow || st.Batches[0].FirstSeq != 3 || st.Batches[producerWindow-1].FirstSeq != 7 {
		t.Errorf("window = %+v, want seqs 3..7", st.Batches)
	}
	// A new epoch forgets the old batches.
	p.recordBatch(1, 1, 0, 0, 8)
	if st := p.producers[1]; st.Epoch != 1 || len(st.Batches) != 1 {
		t.Errorf("after epoch bump: %+v", st)
	}
}

// TestSequenceWrapInsideBatch: a batch whose sequences run past MaxInt32
// wraps to 0 like Kafka's DefaultRecordBatch.incrementSequence, so the next
// batch continues from the wrapped value, also after a crash.
func TestSequenceWrapInsideBatch(t *testing.T) {
	dir := t.TempDir()
	p := openTest(t, dir)
	const pid = 42
	// Seed the producer at a sequence just below the wrap.
	p.st.mu.Lock()
	p.st.recordBatch(pid, 0, math.MaxInt32-3, math.MaxInt32-2, 0)
	p.st.mu.Unlock()
	// Seqs MaxInt32-1, MaxInt32, 0 in one batch.
	if res := appendIdem(t, p, pid, 0, math.MaxInt32-1, 3); res.Err != nil || res.Base != 0 {
		t.Fatalf("batch spanning the wrap: %+v", res)
	}
	if res := appendIdem(t, p, pid, 0, 1, 2); res.Err != nil {
		t.Fatalf("batch after the wrap (seq 1): %v", res.Err)
	}
	// And a retry of the spanning batch is still recognised.
	if res := appendIdem(t, p, pid, 0, math.MaxInt32-1, 3); res.Err != nil || res.Base != 0 || res.Batches != 0 {
		t.Errorf("retry of the spanning batch: %+v, want duplicate at 0", res)
	}
	// The rebuilt state after a crash agrees.
	crash(t, p)
	p = openTest(t, dir)
	defer p.Close()
	if res := appendIdem(t, p, pid, 0, 3, 1); res.Err != nil {
		t.Errorf("after crash reopen, seq 3: %v", res.Err)
	}
}

// TestProducerExpiry: producer.id.expiration.ms forgets a producer that has
// not written for that long, keeps one that wrote recently and one with a
// transaction open in the partition, and keeps the age across a clean
// restart (Seen is in the snapshot) while state rebuilt from the log after a
// crash counts as seen at the restart. A forgotten producer continuing its
// sequence gets UNKNOWN_PRODUCER_ID; starting again at 0 works.
func TestProducerExpiry(t *testing.T) {
	dir := t.TempDir()
	p := openTest(t, dir)
	const idle, busy, inTxn = 1, 2, 3
	for _, pid := range []int64{idle, busy, inTxn} {
		for seq := int32(0); seq < 6; seq += 2 {
			if res := appendIdem(t, p, pid, 0, seq, 2); res.Err != nil {
				t.Fatalf("producer %d seq %d: %v", pid, seq, res.Err)
			}
		}
	}
	age := func(pid int64, d time.Duration) {
		p.st.mu.Lock()
		p.st.producers[pid].Seen -= d.Milliseconds()
		p.st.mu.Unlock()
	}
	age(idle, 2*time.Hour)
	age(inTxn, 2*time.Hour)
	age(busy, 30*time.Minute)
	markOpen := func() {
		p.st.mu.Lock()
		if p.st.ongoing == nil {
			p.st.ongoing = map[int64]int64{}
		}
		p.st.ongoing[inTxn] = 0 // as if its transaction were open here
		p.st.mu.Unlock()
	}
	markOpen()

	// Survives a clean restart with its age.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTest(t, dir)
	markOpen() // the test wrote no real transaction; re-mark it

	if n := p.ExpireProducers(time.Now().UnixMilli(), time.Hour); n != 1 {
		t.Errorf("expired %d producers, want 1", n)
	}
	p.mu.Lock()
	_, idleKept := p.st.producers[idle]
	_, busyKept := p.st.producers[busy]
	_, txnKept := p.st.producers[inTxn]
	p.mu.Unlock()
	if idleKept || !busyKept || !txnKept {
		t.Fatalf("after the sweep: idle kept %v (want false), busy kept %v, in-transaction kept %v (want true)", idleKept, busyKept, txnKept)
	}
	if infos, _ := p.ActiveProducers(); len(infos) != 2 {
		t.Fatalf("DescribeProducers state: %d producers, want 2", len(infos))
	}
	if res := appendIdem(t, p, idle, 0, 6, 2); res.Err != ErrUnknownProducerID {
		t.Fatalf("expired producer continuing at seq 6: %v, want UNKNOWN_PRODUCER_ID", res.Err)
	}
	if res := appendIdem(t, p, busy, 0, 6, 2); res.Err != nil {
		t.Fatalf("kept producer continuing at seq 6: %v", res.Err)
	}
	if res := appendIdem(t, p, idle, 1, 0, 2); res.Err != nil {
		t.Fatalf("expired producer at a new epoch, seq 0: %v", res.Err)
	}

	// After a crash the rebuilt state counts as seen now: nothing expires
	// at once, even the producers that were already old.
	age(busy, 2*time.Hour)
	crash(t, p)
	p = openTest(t, dir)
	defer p.Close()
	p.ExpireProducers(time.Now().UnixMilli(), time.Hour)
	if infos, _ := p.ActiveProducers(); len(infos) != 3 {
		t.Fatalf("after a crash and a sweep: %d producers, want all 3 rebuilt from the log", len(infos))
	}
}

// BenchmarkAppendBatches: the produce path's partition step, one idempotent
// batch of 10 records per call (sequence check, epoch stamp, append,
// producer state). It must not allocate per batch.
func BenchmarkAppendBatches(b *testing.B) {
	p := openTest(b, b.TempDir())
	defer p.Close()
	raw := idemBatch(1, 0, 0, 10)
	h, err := storage.ValidateBatch(raw)
	if err != nil {
		b.Fatal(err)
	}
	raws, hdrs := [][]byte{raw}, []storage.BatchHeader{h}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// The next sequence (the CRC is not checked past validation).
		hdrs[0].BaseSequence = addSequence(0, int32(i*10))
		binary.BigEndian.PutUint32(raw[53:], uint32(hdrs[0].BaseSequence))
		if res := p.AppendBatches(raws, hdrs); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
