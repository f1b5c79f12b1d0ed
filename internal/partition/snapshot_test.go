package partition

import (
	"bytes"
	"testing"
)

// FuzzDecodeSnapshot: the producer snapshot is overwritten in place, so a
// crash may leave any mix of old and new bytes. decodeSnapshot must never
// panic, must accept what encodeSnapshot wrote, and must refuse a file
// whose header names a checksum the rest does not have (torn writes).
func FuzzDecodeSnapshot(f *testing.F) {
	good := encodeSnapshot(producerSnapshot{Offset: 42, Producers: map[int64]*producerState{7: {Epoch: 1, Batches: []seqBatch{{FirstSeq: 0, LastSeq: 4, Base: 37}}}}})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte(`{"offset":3,"producers":{}}`))
	f.Add(append(bytes.Clone(good), `"offset":3}`...))
	f.Add([]byte(snapshotHeader + "zzzzzzzz\n{}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		snap, ok := decodeSnapshot(raw)
		if !ok {
			return
		}
		if rest, found := bytes.CutPrefix(raw, []byte(snapshotHeader)); found {
			// Accepted with a header: re-encoding gives a file that
			// decodes to the same.
			again, ok2 := decodeSnapshot(encodeSnapshot(snap))
			if !ok2 || again.Offset != snap.Offset || len(again.Producers) != len(snap.Producers) {
				t.Fatalf("re-encoded snapshot differs: %+v vs %+v (from %q)", again, snap, rest)
			}
		}
	})
}

// TestDecodeSnapshotTorn: every cut of a snapshot, and a new snapshot
// written over a longer old one whose tail was not cut, read as absent;
// the whole file and a legacy JSON file read as written.
func TestDecodeSnapshotTorn(t *testing.T) {
	snap := producerSnapshot{Offset: 42, Producers: map[int64]*producerState{7: {Epoch: 1, Batches: []seqBatch{{FirstSeq: 0, LastSeq: 4, Base: 37}}}}}
	good := encodeSnapshot(snap)
	got, ok := decodeSnapshot(good)
	if !ok || got.Offset != 42 || got.Producers[7] == nil || got.Producers[7].Batches[0].Base != 37 {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	for n := range len(good) {
		if _, ok := decodeSnapshot(good[:n]); ok {
			t.Fatalf("snapshot cut at %d of %d bytes accepted", n, len(good))
		}
	}
	old := encodeSnapshot(producerSnapshot{Offset: 9, Producers: map[int64]*producerState{1: {}, 2: {}, 3: {}, 4: {}}})
	short := encodeSnapshot(producerSnapshot{Offset: 10, Producers: map[int64]*producerState{}})
	mixed := append(bytes.Clone(short), old[len(short):]...) // written, not yet cut to length
	if _, ok := decodeSnapshot(mixed); ok {
		t.Fatal("new snapshot followed by the old one's tail accepted")
	}
	torn := bytes.Clone(old)
	copy(torn[len(torn)/2:], short[len(short)/2:]) // a page of the new one over the old
	if _, ok := decodeSnapshot(torn); ok {
		t.Fatal("half-overwritten snapshot accepted")
	}
	if got, ok := decodeSnapshot([]byte(`{"offset":3,"producers":{"5":{"e":2}}}`)); !ok || got.Offset != 3 || got.Producers[5].Epoch != 2 {
		t.Fatalf("legacy JSON snapshot: %+v %v", got, ok)
	}
}
