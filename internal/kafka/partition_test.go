package kafka

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/twmb/franz-go/pkg/kerr"
)

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
			end := f.b.partition("t", 0).Log().LogEndOffset()

			switch mode {
			case "close":
				f = f.reopen(false)
				if _, err := os.Stat(filepath.Join(f.dir, "t-0", partition.SnapshotFile)); err != nil {
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
			if got := f.b.partition("t", 0).Log().LogEndOffset(); got != end+1 {
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
	f.b.partition("t", 0).Log() // partitions are created on first use
	f = f.reopen(false)
	f.close()
	snap := filepath.Join(f.dir, "t-0", partition.SnapshotFile)
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
