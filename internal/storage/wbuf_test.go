package storage

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestBufferedTail: small batches wait in the write buffer (past a
// segment's first reserveAfter bytes, which are written through); the WAL
// round takes the unsynced tail from memory, in pieces that follow each
// other, and data marked durable that way may stay buffered, yet every read
// sees it.
func TestBufferedTail(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	defer l.Close()
	seg := filepath.Join(dir, segmentName(0, logSuffix))
	fileSize := func() int64 {
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// The segment's first bytes go straight to the file, unbuffered.
	head := simpleBatch(t, 1, 1000, 50)
	if _, err := l.Append(head); err != nil {
		t.Fatal(err)
	}
	if fileSize() != int64(len(head)) {
		t.Fatalf("file holds %d bytes after a first small append, want %d (written through)", fileSize(), len(head))
	}
	big := simpleBatch(t, 1, 1000, reserveAfter)
	if _, err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	all := append(head, big...)
	written := int64(len(all))
	if fileSize() != written {
		t.Fatalf("file holds %d bytes, want %d", fileSize(), written)
	}
	if data, from, to, err := l.Unsynced(nil); err != nil || from != 0 || to != 2 || !bytes.Equal(data, all) {
		t.Fatalf("Unsynced = %d bytes [%d, %d) %v; want the 2 written-through batches [0, 2)", len(data), from, to, err)
	}
	l.MarkDurable(2)
	appendN := func(n int) []byte {
		var out []byte
		for range n {
			b := simpleBatch(t, 2, 1000, 50)
			if _, err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b...) // base offset filled in by Append
		}
		all = append(all, out...)
		return out
	}

	first := appendN(3)
	if fileSize() != written {
		t.Fatalf("file holds %d bytes before any sync; small batches should be buffered", fileSize())
	}
	data, from, to, err := l.Unsynced(nil)
	if err != nil || from != 2 || to != 8 || !bytes.Equal(data, first) {
		t.Fatalf("Unsynced = %d bytes [%d, %d) %v; want the 3 batches [2, 8)", len(data), from, to, err)
	}
	l.MarkDurable(to)

	second := appendN(2)
	data, from, to, err = l.Unsynced(nil)
	if err != nil || from != 8 || to != 12 || !bytes.Equal(data, second) {
		t.Fatalf("second Unsynced = %d bytes [%d, %d) %v; want the 2 new batches [8, 12)", len(data), from, to, err)
	}
	l.MarkDurable(to)
	if fileSize() != written {
		t.Fatalf("file holds %d bytes; WAL-durable data below %d KiB should stay buffered", fileSize(), wbufLazyMax>>10)
	}

	// A fetch up to the high watermark writes the buffer out first.
	got, err := l.Read(0, math.MaxInt32, l.DurableOffset(), nil)
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("Read = %d bytes, %v; want all %d bytes", len(got), err, len(all))
	}
	if fileSize() != int64(len(all)) {
		t.Fatalf("file holds %d bytes after the read, want %d", fileSize(), len(all))
	}

	// Reads beyond the durable offset see buffered batches too.
	appendN(1)
	got, err = l.Read(0, math.MaxInt32, math.MaxInt64, nil)
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("Read past the durable offset = %d bytes, %v; want all %d bytes", len(got), err, len(all))
	}

	// Sync writes and fsyncs everything.
	appendN(2)
	if end, err := l.Sync(); err != nil || end != 18 || l.SyncedOffset() != 18 {
		t.Fatalf("Sync = %d, %v (synced %d); want 18", end, err, l.SyncedOffset())
	}
	if fileSize() != int64(len(all)) {
		t.Fatalf("file holds %d bytes after Sync, want %d", fileSize(), len(all))
	}
}

// TestBufferedBatchesSurviveRollAndClose: a roll writes the buffer into the
// segment it belongs to, and Close writes the rest.
func TestBufferedBatchesSurviveRollAndClose(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentBytes: 1000})
	var want []byte
	for range 20 {
		b := simpleBatch(t, 1, 1000, 100)
		if _, err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{SegmentBytes: 1000})
	defer l.Close()
	got, err := l.Read(0, math.MaxInt32, math.MaxInt64, nil)
	if err != nil || !bytes.Equal(got, want) || l.LogEndOffset() != 20 {
		t.Fatalf("after reopen: %d bytes (want %d), end %d, %v", len(got), len(want), l.LogEndOffset(), err)
	}
	if n := len(l.Segments()); n < 3 {
		t.Fatalf("%d segments, want rolls", n)
	}
}
