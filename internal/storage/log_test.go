package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func countFiles(t *testing.T, dir, suffix string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// variedBatches returns n uncompressed batches of 1..5 records and varying
// sizes, with increasing timestamps.
func variedBatches(t testing.TB, rng *rand.Rand, n int) [][]byte {
	var out [][]byte
	ts := int64(1_000_000)
	for range n {
		recs := 1 + rng.IntN(5)
		out = append(out, simpleBatch(t, recs, ts, rng.IntN(200)))
		ts += int64(recs)
	}
	return out
}

func TestAppendReadAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentBytes: 2000, IndexIntervalBytes: 300})
	defer l.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	want := appendAll(t, l, variedBatches(t, rng, 150))
	if n := countFiles(t, dir, ".log"); n < 5 {
		t.Fatalf("expected several segments, got %d", n)
	}
	checkLog(t, l, want)

	end := l.LogEndOffset()
	if got, err := l.Read(end, 100, end, nil); err != nil || len(got) != 0 {
		t.Fatalf("read at end: %d bytes, %v", len(got), err)
	}
	if _, err := l.Read(end+1, 100, end, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v, want ErrOffsetOutOfRange", err)
	}
	if _, err := l.Read(-1, 100, end, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v, want ErrOffsetOutOfRange", err)
	}
	var size int64
	for _, a := range want {
		size += int64(len(a.data))
	}
	if l.Size() != size {
		t.Fatalf("Size %d, want %d", l.Size(), size)
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 1500, IndexIntervalBytes: 200})
	defer l.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	want := appendAll(t, l, variedBatches(t, rng, 60))
	end := l.LogEndOffset()
	for i := 0; i < len(want)-3; i++ {
		a, b, c := want[i], want[i+1], want[i+2]
		mid := (a.base + a.next - 1) / 2
		// maxBytes smaller than the first batch: still exactly one batch.
		got, err := l.Read(mid, 1, end, nil)
		if err != nil || !bytes.Equal(got, a.data) {
			t.Fatalf("batch %d, maxBytes 1: %d bytes, %v", i, len(got), err)
		}
		// Room for two batches but not three.
		two := len(a.data) + len(b.data)
		got, err = l.Read(mid, two+len(c.data)-1, end, nil)
		if err != nil || !bytes.Equal(got, append(bytes.Clone(a.data), b.data...)) {
			t.Fatalf("batch %d, two batches: got %d bytes want %d, %v", i, len(got), two, err)
		}
		// upTo cuts at a batch base: batch c starts at upTo, so it is excluded
		// however much room there is.
		got, err = l.Read(mid, 1<<20, c.base, nil)
		if err != nil || !bytes.Equal(got, append(bytes.Clone(a.data), b.data...)) {
			t.Fatalf("batch %d, upTo %d: got %d bytes, %v", i, c.base, len(got), err)
		}
		// upTo inside batch b: b's base is below upTo, so it is included.
		got, err = l.Read(mid, 1<<20, b.base+1, nil)
		if err != nil || !bytes.Equal(got, append(bytes.Clone(a.data), b.data...)) {
			t.Fatalf("batch %d, upTo inside batch: got %d bytes, %v", i, len(got), err)
		}
		// upTo at the containing batch's base: nothing is visible.
		got, err = l.Read(mid, 1<<20, a.base, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("batch %d, upTo at own base: got %d bytes, %v", i, len(got), err)
		}
	}
	// Read appends to dst.
	prefix := []byte("prefix")
	got, err := l.Read(want[0].base, 1, end, prefix)
	if err != nil || !bytes.Equal(got, append([]byte("prefix"), want[0].data...)) {
		t.Fatalf("read into dst: %q..., %v", got[:min(len(got), 10)], err)
	}
}

func TestAppendRejectsMalformed(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	b := simpleBatch(t, 2, 1, 10)
	if _, err := l.Append(b[:len(b)-1]); !errors.Is(err, ErrBadBatch) {
		t.Fatalf("short batch: %v", err)
	}
	if _, err := l.Append(b); err != nil {
		t.Fatalf("append after rejected batch: %v", err)
	}
	if l.LogEndOffset() != 2 {
		t.Fatalf("end %d", l.LogEndOffset())
	}
}

func TestSyncAndDurable(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentBytes: 500})
	defer l.Close()
	if l.Dirty() || l.DurableOffset() != 0 {
		t.Fatal("fresh log is dirty")
	}
	for i := range 20 {
		if _, err := l.Append(simpleBatch(t, 2, int64(i), 50)); err != nil {
			t.Fatal(err)
		}
	}
	if !l.Dirty() || l.DurableOffset() != 0 {
		t.Fatalf("after append: dirty %v durable %d", l.Dirty(), l.DurableOffset())
	}
	d, err := l.Sync()
	if err != nil || d != 40 || l.DurableOffset() != 40 || l.Dirty() {
		t.Fatalf("sync: %d %v, durable %d dirty %v", d, err, l.DurableOffset(), l.Dirty())
	}
	// Sealed segments get their index files once synced; the active one not.
	if logs, idx := countFiles(t, dir, ".log"), countFiles(t, dir, ".index"); idx != logs-1 {
		t.Fatalf("%d logs, %d index files", logs, idx)
	}
}

func TestSegmentAgeRolls(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentAge: time.Nanosecond})
	defer l.Close()
	for i := range 4 {
		if _, err := l.Append(simpleBatch(t, 1, int64(i), 10)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the clock must move for age to grow
	}
	if n := countFiles(t, dir, ".log"); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
}

func TestFailedWriteFailsLog(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	if _, err := l.Append(simpleBatch(t, 1, 1, 10)); err != nil {
		t.Fatal(err)
	}
	_ = l.active.f.Close() // the next write fails like an I/O error would
	// A small batch is buffered (wbuf.go): the write, and the failure,
	// happen at the latest when the log is synced.
	if _, err := l.Append(simpleBatch(t, 1, 1, 10)); !errors.Is(err, ErrLogFailed) {
		if _, serr := l.Sync(); err != nil || !errors.Is(serr, ErrLogFailed) {
			t.Fatalf("append on broken file: %v, then sync: %v", err, serr)
		}
	}
	if _, err := l.Append(simpleBatch(t, 1, 1, 10)); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after failure: %v", err)
	}
	if _, err := l.Sync(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("sync after failure: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("close after failure: %v", err)
	}
}

func TestFailedSyncFailsLog(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	if _, err := l.Append(simpleBatch(t, 1, 1, 10)); err != nil {
		t.Fatal(err)
	}
	_ = l.active.f.Close()
	if _, err := l.Sync(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("sync on broken file: %v", err)
	}
	if l.DurableOffset() != 0 {
		t.Fatalf("durable %d after failed sync", l.DurableOffset())
	}
	if _, err := l.Append(simpleBatch(t, 1, 1, 10)); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after failed sync: %v", err)
	}
	_ = l.Close()
}

func TestClosedLog(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := l.Append(simpleBatch(t, 1, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append: %v", err)
	}
	if _, err := l.Read(0, 1, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("read: %v", err)
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l := openLog(t, dir, Options{})
	if _, err := l.Append(simpleBatch(t, 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestTruncate(t *testing.T) {
	for _, mode := range []string{"live", "reopen-clean", "reopen-crash"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 1200, IndexIntervalBytes: 150}
			l := openLog(t, dir, opts)
			rng := rand.New(rand.NewPCG(5, 6))
			want := appendAll(t, l, variedBatches(t, rng, 80))
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			for _, cut := range []int{70, 50, 49, 20} {
				a := want[cut]
				if err := l.Truncate(a.next - 1); err != nil { // inside the batch: it goes
					t.Fatal(err)
				}
				want = want[:cut]
				if l.DurableOffset() > a.base || l.LogEndOffset() != a.base {
					t.Fatalf("after truncate to %d: end %d durable %d", a.base, l.LogEndOffset(), l.DurableOffset())
				}
				checkLog(t, l, want)
			}
			switch mode {
			case "reopen-clean":
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openLog(t, dir, opts)
			case "reopen-crash":
				l.crash()
				l = openLog(t, dir, opts)
			}
			defer l.Close()
			checkLog(t, l, want)
			want = append(want, appendAll(t, l, variedBatches(t, rng, 30))...)
			checkLog(t, l, want)
			if err := l.Truncate(0); err != nil {
				t.Fatal(err)
			}
			checkLog(t, l, nil)
			want = appendAll(t, l, variedBatches(t, rng, 3))
			checkLog(t, l, want)
		})
	}
}

func TestScanBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 800, IndexIntervalBytes: 100})
	defer l.Close()
	want := appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(7, 8)), 40))
	for _, from := range []int64{0, want[10].base, want[10].base + 1, want[39].next - 1, want[39].next} {
		var got []int64
		err := l.ScanBatches(from, func(h BatchHeader) error {
			got = append(got, h.BaseOffset)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var exp []int64
		for _, a := range want {
			if a.next > from {
				exp = append(exp, a.base)
			}
		}
		if len(got) != len(exp) || (len(exp) > 0 && (got[0] != exp[0] || got[len(got)-1] != exp[len(exp)-1])) {
			t.Fatalf("from %d: got %v, want %v", from, got, exp)
		}
	}
	stop := errors.New("stop")
	if err := l.ScanBatches(0, func(BatchHeader) error { return stop }); err != stop {
		t.Fatalf("callback error not returned: %v", err)
	}
}
