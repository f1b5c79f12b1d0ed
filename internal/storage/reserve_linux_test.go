package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated returns the bytes a file occupies on disk (st_blocks).
func allocated(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestReservationProportionate: an almost empty log reserves one page, not
// a fixed chunk, while open; a busy one reserves in growing steps; sealing a
// segment and closing the log give back what was reserved beyond the end
// (issue 13: thousands of quiet partitions held 64 KiB each).
func TestReservationProportionate(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentBytes: 256 << 10})
	seg0 := filepath.Join(dir, segmentName(0, logSuffix))
	if _, err := l.Append(simpleBatch(t, 1, 1000, 100)); err != nil {
		t.Fatal(err)
	}
	if got := allocated(t, seg0); got > minReserve {
		t.Fatalf("one small batch: %d bytes allocated while open, want at most %d", got, minReserve)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(seg0)
	if got := allocated(t, seg0); got > 4<<10 || fi.Size() > got {
		t.Fatalf("after close: %d bytes allocated for a %d-byte segment", got, fi.Size())
	}

	// Fill more than one segment: the sealed one keeps no reservation
	// beyond its end (a page of rounding and one of extent tree may remain),
	// and reserved space never runs far ahead of the data.
	l = openLog(t, dir, Options{SegmentBytes: 256 << 10})
	for range 300 {
		if _, err := l.Append(simpleBatch(t, 1, 1000, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := checkAllocated(t, l); err != "" {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want a roll", len(segs))
	}
	fi, _ = os.Stat(seg0)
	if got := allocated(t, seg0); got > fi.Size()+8<<10 {
		t.Fatalf("sealed segment: %d bytes allocated for %d bytes", got, fi.Size())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		p := filepath.Join(dir, segmentName(s.Base, logSuffix))
		fi, _ := os.Stat(p)
		if got := allocated(t, p); got > fi.Size()+8<<10 {
			t.Fatalf("%s after close: %d bytes allocated for %d bytes", p, got, fi.Size())
		}
	}
}

// checkAllocated: the active segment's allocation is at most twice its data
// plus two pages (each reservation step is at most what was reserved before).
func checkAllocated(tb testing.TB, l *Log) string {
	l.mu.Lock()
	seg, data := l.active, l.active.size.Load()+int64(len(l.wbuf))
	l.mu.Unlock()
	if got := allocated(tb, seg.f.Name()); got > 2*data+2*minReserve {
		return fmt.Sprintf("%s: %d bytes allocated for %d bytes of data", seg.f.Name(), got, data)
	}
	return ""
}
