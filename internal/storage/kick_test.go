package storage

import (
	"testing"
)

// TestEarlyWriteback: writeback is started for every byte written to a
// segment file, in contiguous ranges of at least kickStep, whether the bytes
// were written through (big batches) or from the write buffer (small ones),
// and a new segment starts its own ranges at 0. The reads still return
// everything.
func TestEarlyWriteback(t *testing.T) {
	type call struct {
		fd      uintptr
		off, to int64
	}
	var calls []call
	kickWriteback = func(fd uintptr, off, n int64) error {
		calls = append(calls, call{fd, off, off + n})
		return startWriteback(fd, off, n)
	}
	t.Cleanup(func() { kickWriteback = startWriteback })

	l := openLog(t, t.TempDir(), Options{SegmentBytes: 8 << 20})
	var batches [][]byte
	for range 6 { // written through: ~300 KiB each
		batches = append(batches, simpleBatch(t, 10, 1000, 30000))
	}
	for range 200 { // buffered: ~8 KiB each
		batches = append(batches, simpleBatch(t, 2, 1000, 4000))
	}
	for range 30 { // through again, rolling past 8 MiB
		batches = append(batches, simpleBatch(t, 10, 1000, 30000))
	}
	want := appendAll(t, l, batches)
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := *l.segs.Load()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want a roll", len(segs))
	}
	// Per segment file, the ranges must be contiguous from 0, each at
	// least kickStep, and reach to within kickStep of the segment's size.
	for _, s := range segs {
		var next int64
		for _, c := range calls {
			if c.fd != s.f.Fd() {
				continue
			}
			if c.off != next || c.to-c.off < kickStep {
				t.Fatalf("segment %d: writeback of [%d, %d) after %d", s.base, c.off, c.to, next)
			}
			next = c.to
		}
		if size := s.size.Load(); size-next >= kickStep {
			t.Fatalf("segment %d: writeback started to %d of %d bytes", s.base, next, size)
		}
	}
	checkLog(t, l, want)
}
