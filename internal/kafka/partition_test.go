package kafka

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

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
		err    *kerr.Error
		notPID bool
	}{
		{name: "not idempotent", notPID: true, first: -1, count: 1, dup: -1},
		{name: "new producer seq 0", epoch: 0, first: 0, count: 3, dup: -1},
		{name: "new producer seq 5", epoch: 0, first: 5, count: 1, dup: -1, err: kerr.UnknownProducerID},
		{name: "new producer high epoch seq 0", epoch: 9, first: 0, count: 1, dup: -1},
		{name: "next seq", state: &five, epoch: 3, first: 10, count: 4, dup: -1},
		{name: "duplicate newest", state: &five, epoch: 3, first: 8, count: 2, dup: 108},
		{name: "duplicate oldest in window", state: &five, epoch: 3, first: 0, count: 2, dup: 100},
		{name: "duplicate middle", state: &five, epoch: 3, first: 4, count: 2, dup: 104},
		{name: "duplicate beyond window", state: &six, epoch: 3, first: 0, count: 2, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "duplicate still in window of six", state: &six, epoch: 3, first: 2, count: 2, dup: 102},
		{name: "overlapping but not identical", state: &five, epoch: 3, first: 8, count: 3, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "gap", state: &five, epoch: 3, first: 11, count: 1, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "restart from 0 same epoch", state: &five, epoch: 3, first: 0, count: 5, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "older epoch", state: &five, epoch: 2, first: 10, count: 1, dup: -1, err: kerr.InvalidProducerEpoch},
		{name: "older epoch duplicate", state: &five, epoch: 2, first: 8, count: 2, dup: -1, err: kerr.InvalidProducerEpoch},
		{name: "newer epoch seq 0", state: &five, epoch: 4, first: 0, count: 1, dup: -1},
		{name: "newer epoch seq 10", state: &five, epoch: 4, first: 10, count: 1, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "wrap after MaxInt32", state: &atMax, epoch: 1, first: 0, count: 1, dup: -1},
		{name: "no wrap to 1", state: &atMax, epoch: 1, first: 1, count: 1, dup: -1, err: kerr.OutOfOrderSequenceNumber},
		{name: "duplicate at MaxInt32", state: &atMax, epoch: 1, first: math.MaxInt32 - 1, count: 2, dup: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &partition{producers: map[int64]*producerState{}}
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

// TestSequenceWrapInsideBatch: a batch whose sequences run past MaxInt32
// wraps to 0 like Kafka's DefaultRecordBatch.incrementSequence, so the next
// batch continues from the wrapped value.
func TestSequenceWrapInsideBatch(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	const pid = 42
	f.b.pidMu.Lock()
	f.b.nextPID = pid + 1 // pretend it was issued
	f.b.pidMu.Unlock()
	// Seed the producer at a sequence just below the wrap, via a new epoch
	// (seq 0), then a run of batches up to MaxInt32-1.
	p := f.b.partition("t", 0)
	p.mu.Lock()
	p.recordBatch(pid, 0, math.MaxInt32-3, math.MaxInt32-2, 0)
	p.mu.Unlock()
	// Seqs MaxInt32-1, MaxInt32, 0 in one batch.
	spanning := makeRecordBatch(t, batchSpec{n: 3, pid: pid, epoch: 0, seq: math.MaxInt32 - 1, valueSize: 1})
	if sp := f.produce("t", 0, spanning); sp.ErrorCode != 0 {
		t.Fatalf("batch spanning the wrap: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	next := makeRecordBatch(t, batchSpec{n: 2, pid: pid, epoch: 0, seq: 1, valueSize: 1})
	if sp := f.produce("t", 0, next); sp.ErrorCode != 0 {
		t.Fatalf("batch after the wrap (seq 1): %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	// And a retry of the spanning batch is still recognised.
	if sp := f.produce("t", 0, spanning); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Errorf("retry of the spanning batch: %v base %d, want duplicate at 0", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
	// The rebuilt state after a crash agrees.
	f = f.reopen(true)
	third := makeRecordBatch(t, batchSpec{n: 1, pid: pid, epoch: 0, seq: 3, valueSize: 1})
	if sp := f.produce("t", 0, third); sp.ErrorCode != 0 {
		t.Errorf("after crash reopen, seq 3: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
}

func TestRecordBatchWindow(t *testing.T) {
	p := &partition{producers: map[int64]*producerState{}}
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

// idem produces one idempotent batch and returns the partition's answer.
func (f *brokerFixture) idem(topic string, pid int64, epoch int16, seq int32, n int) (int64, int16) {
	f.t.Helper()
	sp := f.produce(topic, 0, makeRecordBatch(f.t, batchSpec{n: n, pid: pid, epoch: epoch, seq: seq, valueSize: 5}))
	return sp.BaseOffset, sp.ErrorCode
}

// TestProducerStatePersists drives the Produce handler with idempotent
// batches, restarts the broker (cleanly, or by abandoning it without Close so
// the state must be rebuilt by scanning the log) and checks duplicates and
// sequence errors are still recognised.
func TestProducerStatePersists(t *testing.T) {
	for _, mode := range []string{"close", "crash", "close then crash"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.createTopic("t", 1, nil)
			pid := initPID(f, -1, -1, nil).ProducerID
			other := initPID(f, -1, -1, nil).ProducerID
			var bases []int64
			for i := range 7 {
				base, code := f.idem("t", pid, 0, int32(i*2), 2)
				if code != 0 {
					t.Fatalf("batch %d: %v", i, kerr.ErrorForCode(code))
				}
				bases = append(bases, base)
			}
			otherBase, code := f.idem("t", other, 0, 0, 1)
			if code != 0 {
				t.Fatalf("other producer: %v", kerr.ErrorForCode(code))
			}
			end := f.b.partition("t", 0).log.LogEndOffset()

			switch mode {
			case "close":
				f = f.reopen(false)
				if _, err := os.Stat(filepath.Join(f.dir, "t-0", producerSnapFile)); err != nil {
					t.Errorf("no producer snapshot after clean close: %v", err)
				}
			case "crash":
				f = f.reopen(true)
			case "close then crash":
				// A snapshot from the clean close, then more batches only in
				// the log: both must be combined.
				f = f.reopen(false)
				base, code := f.idem("t", pid, 0, 14, 2)
				if code != 0 {
					t.Fatalf("batch after reopen: %v", kerr.ErrorForCode(code))
				}
				bases = append(bases, base)
				end += 2
				f = f.reopen(true)
			}

			checks := []struct {
				name  string
				pid   int64
				epoch int16
				seq   int32
				n     int
				base  int64 // expected base offset (-1 for errors)
				code  *kerr.Error
			}{
				{"duplicate of the newest", pid, 0, int32((len(bases) - 1) * 2), 2, bases[len(bases)-1], nil},
				{"duplicate of the oldest in window", pid, 0, int32((len(bases) - 5) * 2), 2, bases[len(bases)-5], nil},
				{"duplicate beyond window", pid, 0, 0, 2, -1, kerr.OutOfOrderSequenceNumber},
				{"gap", pid, 0, int32(len(bases)*2 + 1), 1, -1, kerr.OutOfOrderSequenceNumber},
				{"old epoch", pid, 0, int32(len(bases) * 2), 1, -1, kerr.InvalidProducerEpoch},
				{"other producer duplicate", other, 0, 0, 1, otherBase, nil},
				{"next in sequence", pid, 0, int32(len(bases) * 2), 1, end, nil},
			}
			for _, c := range checks {
				if c.name == "old epoch" {
					// Bump the epoch first (KIP-360) so epoch 0 becomes old.
					if r := initPID(f, pid, 0, nil); r.ProducerEpoch != 1 {
						t.Fatalf("epoch bump: %+v", r)
					}
					if _, code := f.idem("t", pid, 1, 0, 1); code != 0 {
						t.Fatalf("new epoch seq 0: %v", kerr.ErrorForCode(code))
					}
					end++
					base, code := f.idem("t", pid, 0, int32(len(bases)*2), 1)
					if code != c.code.Code || base != -1 {
						t.Errorf("%s: base %d err %v", c.name, base, kerr.ErrorForCode(code))
					}
					continue
				}
				if c.name == "next in sequence" {
					// Epoch is now 1 with seq 0 written; continue at 1.
					base, code := f.idem("t", pid, 1, 1, 1)
					if code != 0 || base != end {
						t.Errorf("%s: base %d err %v, want base %d", c.name, base, kerr.ErrorForCode(code), end)
					}
					continue
				}
				base, code := f.idem("t", c.pid, c.epoch, c.seq, c.n)
				want := int16(0)
				if c.code != nil {
					want = c.code.Code
				}
				if code != want || base != c.base {
					t.Errorf("%s: base %d err %v, want base %d err %v", c.name, base, kerr.ErrorForCode(code), c.base, c.code)
				}
			}
			if got := f.b.partition("t", 0).log.LogEndOffset(); got != end+1 {
				t.Errorf("log end %d, want %d: duplicates must not be re-appended", got, end+1)
			}
		})
	}
}

// TestProducerSnapshotChecked: a snapshot naming a producer without batches
// (hand-edited or from a buggy writer) must not crash the broker on the next
// produce of that producer.
func TestProducerSnapshotChecked(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f = f.reopen(false)
	f.close()
	snap := filepath.Join(f.dir, "t-0", producerSnapFile)
	if err := os.WriteFile(snap, []byte(`{"offset":0,"producers":{"5":{"e":0,"batches":[]},"6":{"e":0}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f = openFixture(t, f.dir, nil)
	for _, pid := range []int64{5, 6} {
		if _, code := f.idem("t", pid, 0, 0, 1); code != 0 {
			t.Errorf("producer %d seq 0 after an empty snapshot entry: %v", pid, kerr.ErrorForCode(code))
		}
	}
}
