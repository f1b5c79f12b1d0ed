package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// retentionLog returns a log of 20 batches of 2 records (offsets 0..39) over
// several small segments, synced so the sealed segments are deletable.
func retentionLog(t *testing.T, dir string) (*Log, []appended) {
	t.Helper()
	l := openLog(t, dir, Options{SegmentBytes: 400})
	var batches [][]byte
	for i := range 20 {
		batches = append(batches, simpleBatch(t, 2, int64(1000+10*i), 50))
	}
	want := appendAll(t, l, batches)
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n < 4 {
		t.Fatalf("want several segments, got %d", n)
	}
	return l, want
}

// after returns the appended batches whose offsets reach start or beyond.
func after(want []appended, start int64) []appended {
	for i, a := range want {
		if a.next > start {
			return want[i:]
		}
	}
	return nil
}

func TestSetLogStartOffsetDeletesWholeSegments(t *testing.T) {
	dir := t.TempDir()
	l, want := retentionLog(t, dir)
	defer l.Close()
	before := l.Segments()
	// A start inside the third segment: the first two go, the third stays.
	start := before[2].Base + 1
	n, nbytes, err := l.SetLogStartOffset(start)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || nbytes != before[0].Size+before[1].Size {
		t.Fatalf("deleted %d segments / %d bytes, want 2 / %d", n, nbytes, before[0].Size+before[1].Size)
	}
	if got := l.LogStartOffset(); got != start {
		t.Fatalf("log start %d, want %d", got, start)
	}
	if got := countFiles(t, dir, logSuffix); got != len(before)-2 {
		t.Fatalf("%d .log files, want %d", got, len(before)-2)
	}
	for _, off := range []int64{0, before[1].Base, start - 1} {
		if _, err := l.Read(off, 1<<20, l.DurableOffset(), nil); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read %d below start: err %v, want out of range", off, err)
		}
	}
	// Reading at the start returns the batch containing it (it straddles).
	got, err := l.Read(start, 1<<20, l.DurableOffset(), nil)
	if err != nil || !bytes.HasPrefix(got, after(want, start)[0].data) {
		t.Fatalf("read at start: %d bytes, err %v", len(got), err)
	}
	// Above the high watermark is refused; a lower start moves nothing.
	if _, _, err := l.SetLogStartOffset(l.DurableOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start above hwm: %v", err)
	}
	if _, _, err := l.SetLogStartOffset(1); err != nil || l.LogStartOffset() != start {
		t.Fatalf("lower start: err %v, start %d", err, l.LogStartOffset())
	}
	// The active segment is never deleted, even at the log end.
	end := l.DurableOffset()
	if _, _, err := l.SetLogStartOffset(end); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != 1 || segs[0].Sealed || l.LogStartOffset() != end {
		t.Fatalf("after start at end: segments %+v, start %d", segs, l.LogStartOffset())
	}
	if got, err := l.Read(end, 1<<20, end, nil); err != nil || len(got) != 0 {
		t.Fatalf("read at end: %d bytes, %v", len(got), err)
	}
	// Appends continue at the end.
	if base, err := l.Append(simpleBatch(t, 1, 5000, 10)); err != nil || base != end {
		t.Fatalf("append after: base %d, err %v", base, err)
	}
}

func TestLogStartPersists(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "clean"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, want := retentionLog(t, dir)
			start := l.Segments()[1].Base + 1
			if _, _, err := l.SetLogStartOffset(start); err != nil {
				t.Fatal(err)
			}
			if crash {
				l.crash()
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, Options{SegmentBytes: 400})
			defer l.Close()
			if got := l.LogStartOffset(); got != start {
				t.Fatalf("log start after reopen %d, want %d", got, start)
			}
			if _, err := l.Read(start-1, 1<<20, l.LogEndOffset(), nil); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below start after reopen: %v", err)
			}
			rest := after(want, start)
			got, err := l.Read(start, 1<<30, l.LogEndOffset(), nil)
			if err != nil || !bytes.Equal(got, concat(rest)) {
				t.Fatalf("read after reopen: %d bytes, want %d, err %v", len(got), len(concat(rest)), err)
			}
		})
	}
}

// Retention of an expired active segment: RollActive seals it only when it
// holds data, the log end is the one the caller decided on and all of it is
// durable; the rolled segment then goes like any sealed one, the start
// reaches the log end, and appends continue there, across a clean close or
// a crash.
func TestRollActiveThenDeleteAll(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			if rolled, err := l.RollActive(0); rolled || err != nil {
				t.Fatalf("empty active segment rolled: %v %v", rolled, err)
			}
			appendAll(t, l, [][]byte{simpleBatch(t, 3, 1000, 20), simpleBatch(t, 2, 1003, 20)})
			end := l.LogEndOffset()
			if rolled, err := l.RollActive(end); rolled || err != nil {
				t.Fatalf("rolled a segment that is not durable: %v %v", rolled, err)
			}
			l.MarkDurable(end) // durable in the WAL only: its file is not fsynced
			if rolled, err := l.RollActive(end - 1); rolled || err != nil {
				t.Fatalf("rolled although the log end moved: %v %v", rolled, err)
			}
			if rolled, err := l.RollActive(end); !rolled || err != nil {
				t.Fatalf("RollActive: %v %v", rolled, err)
			}
			if n, _, err := l.SetLogStartOffset(end); n != 1 || err != nil {
				t.Fatalf("deleted %d segments, err %v; want 1", n, err)
			}
			segs := l.Segments()
			if len(segs) != 1 || segs[0].Base != end || segs[0].Size != 0 || l.LogStartOffset() != end {
				t.Fatalf("after deleting everything: segments %+v, start %d, want one empty at %d", segs, l.LogStartOffset(), end)
			}
			if rolled, err := l.RollActive(end); rolled || err != nil {
				t.Fatalf("rolled the new empty segment: %v %v", rolled, err)
			}
			if _, err := l.Read(0, 1<<20, end, nil); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below the new start: %v", err)
			}
			if _, err := l.Sync(); err != nil || l.Failed() {
				t.Fatalf("sync after deleting a pending segment: %v", err)
			}
			if crash {
				l.crash()
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, Options{})
			defer l.Close()
			if l.LogStartOffset() != end || l.LogEndOffset() != end {
				t.Fatalf("after reopen: start %d end %d, want %d", l.LogStartOffset(), l.LogEndOffset(), end)
			}
			want := appendAll(t, l, [][]byte{simpleBatch(t, 2, 2000, 20)})
			if want[0].base != end {
				t.Fatalf("append after deleting everything at %d, want %d", want[0].base, end)
			}
			checkLog(t, l, want)
		})
	}
}

// A log directory whose segment files are all gone but whose start was
// persisted starts at that start, not at 0.
func TestOpenWithoutSegmentsStartsAtCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l, _ := retentionLog(t, dir)
	end := l.LogEndOffset()
	if err := l.writeStartCheckpoint(end); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	l.crash()
	for _, s := range segs {
		if err := os.Remove(filepath.Join(dir, segmentName(s.Base, logSuffix))); err != nil {
			t.Fatal(err)
		}
	}
	l = openLog(t, dir, Options{SegmentBytes: 400})
	defer l.Close()
	if l.LogStartOffset() != end || l.LogEndOffset() != end {
		t.Fatalf("start %d end %d, want %d", l.LogStartOffset(), l.LogEndOffset(), end)
	}
}

// A crash after the checkpoint was written but before the files were removed
// leaves segments below the start; Open removes them.
func TestOpenRemovesSegmentsBelowCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l, _ := retentionLog(t, dir)
	segs := l.Segments()
	start := segs[2].Base
	if err := l.writeStartCheckpoint(start); err != nil {
		t.Fatal(err)
	}
	l.crash()
	l = openLog(t, dir, Options{SegmentBytes: 400})
	defer l.Close()
	if got := l.LogStartOffset(); got != start {
		t.Fatalf("start %d, want %d", got, start)
	}
	if got := l.Segments()[0].Base; got != start {
		t.Fatalf("first segment %d, want %d", got, start)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(segs[0].Base, logSuffix))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment below start still on disk: %v", err)
	}
}

// Segments rolled but not yet fsynced (durable in the WAL only) are deleted
// too, and the next Sync does not touch their closed files.
func TestUnsyncedSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	l, _ := retentionLog(t, dir)
	defer l.Close()
	for i := range 10 {
		if _, err := l.Append(simpleBatch(t, 2, int64(9000+i), 50)); err != nil {
			t.Fatal(err)
		}
	}
	l.MarkDurable(l.LogEndOffset()) // as the WAL would
	segs := l.Segments()
	target := segs[len(segs)-3].Next
	if l.SyncedOffset() >= target {
		t.Fatalf("test setup: segments below %d already synced", target)
	}
	if _, _, err := l.SetLogStartOffset(target); err != nil {
		t.Fatal(err)
	}
	if got := len(l.Segments()); got != 2 {
		t.Fatalf("%d segments left, want 2", got)
	}
	if _, err := l.Sync(); err != nil || l.Failed() {
		t.Fatalf("sync after deleting unsynced segments: %v (failed %v)", err, l.Failed())
	}
	end := l.LogEndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{SegmentBytes: 400})
	defer l.Close()
	if l.LogStartOffset() != target || l.LogEndOffset() != end {
		t.Fatalf("after reopen: start %d end %d, want %d %d", l.LogStartOffset(), l.LogEndOffset(), target, end)
	}
}

// Readers racing with deletion either succeed or get out of range; they never
// read a closed or removed file (run with -race).
func TestConcurrentReadsDuringDeletion(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentBytes: 300})
	defer l.Close()
	for i := range 200 {
		if _, err := l.Append(simpleBatch(t, 1, int64(i), 60)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				off := int64((i*7 + r*13) % 200)
				if _, err := l.Read(off, 4096, 200, nil); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					errs <- err
					return
				}
				_ = l.Segments()
				_, _ = l.MaxTimestamp()
			}
		}()
	}
	for start := int64(0); start <= 190; start += 10 {
		if _, _, err := l.SetLogStartOffset(start); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("reader failed during deletion: %v", err)
	default:
	}
	if got := l.LogStartOffset(); got != 190 {
		t.Fatalf("start %d, want 190", got)
	}
}

// A lookup by timestamp never answers an offset below the log start.
func TestOffsetForTimestampRespectsStart(t *testing.T) {
	dir := t.TempDir()
	l, _ := retentionLog(t, dir)
	defer l.Close()
	start := l.Segments()[1].Base + 1
	if _, _, err := l.SetLogStartOffset(start); err != nil {
		t.Fatal(err)
	}
	off, _, ok := l.OffsetForTimestamp(0)
	if !ok || off != start {
		t.Fatalf("offset for ts 0: %d (ok %v), want %d", off, ok, start)
	}
}

func FuzzStartCheckpoint(f *testing.F) {
	f.Add(encodeStartCheckpoint(0))
	f.Add(encodeStartCheckpoint(1 << 40))
	f.Add([]byte("CHRNKLS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		off, ok := decodeStartCheckpoint(b)
		if !ok {
			return
		}
		if off < 0 {
			t.Fatalf("negative start %d accepted", off)
		}
		if again := encodeStartCheckpoint(off); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which does not re-encode to itself", b)
		}
	})
}
