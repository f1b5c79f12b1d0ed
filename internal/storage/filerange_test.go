package storage

import (
	"bytes"
	"os"
	"testing"
)

// rangeBytes reads what rs name.
func rangeBytes(t *testing.T, rs []FileRange) []byte {
	t.Helper()
	var out []byte
	for _, r := range rs {
		var err error
		if out, err = r.AppendTo(out); err != nil {
			t.Fatalf("read range: %v", err)
		}
	}
	return out
}

// ReadFile names exactly the batches Read returns, from every offset and
// with byte limits that cut inside segments, and counts their records.
func TestReadFileMatchesRead(t *testing.T) {
	l, _ := retentionLog(t, t.TempDir())
	defer l.Close()
	end := l.LogEndOffset()
	for off := int64(0); off <= end; off++ {
		for _, maxBytes := range []int{1, 150, 500, 1 << 20} {
			for _, upTo := range []int64{end, off + 3} {
				data, err := l.Read(off, maxBytes, upTo, nil)
				if err != nil {
					t.Fatal(err)
				}
				rs, n, records, err := l.ReadFile(off, maxBytes, upTo, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := rangeBytes(t, rs); !bytes.Equal(got, data) || n != len(data) {
					t.Fatalf("offset %d max %d upTo %d: ranges hold %d bytes (n %d), Read %d", off, maxBytes, upTo, len(got), n, len(data))
				}
				wantRecords := 0
				SplitBatches(data, func(b []byte) error {
					h, _ := ParseBatchHeader(b)
					wantRecords += int(h.RecordCount)
					return nil
				})
				if records != wantRecords {
					t.Fatalf("offset %d: %d records, want %d", off, records, wantRecords)
				}
				ReleaseRanges(rs)
			}
		}
	}
	if _, _, _, err := l.ReadFile(end+1, 100, end+1, nil); err == nil {
		t.Fatal("ReadFile beyond the end succeeded")
	}
}

// A range keeps its segment's file open after retention deleted the
// segment and after the log closed: the bytes stay readable until the
// range is released, and then no descriptor is left.
func TestFileRangeOutlivesSegment(t *testing.T) {
	dir := t.TempDir()
	l, want := retentionLog(t, dir)
	var all []byte
	for _, a := range want {
		all = append(all, a.data...)
	}
	rs, _, _, err := l.ReadFile(0, 1<<30, l.LogEndOffset(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 4 {
		t.Fatalf("want a range per segment, got %d", len(rs))
	}
	// Retention deletes every sealed segment below the last one.
	segs := l.Segments()
	if _, _, err := l.SetLogStartOffset(segs[len(segs)-1].Base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rs[0].File().Name()); !os.IsNotExist(err) {
		t.Fatalf("deleted segment still on disk: %v", err)
	}
	if got := rangeBytes(t, rs); !bytes.Equal(got, all) {
		t.Fatal("ranges of deleted segments read different bytes")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rangeBytes(t, rs); !bytes.Equal(got, all) {
		t.Fatal("ranges read different bytes after Close")
	}
	for _, r := range rs {
		if !r.Intact() {
			t.Fatal("range not intact without a truncation")
		}
	}
	// Counted in dir only: the process's other descriptors come and go
	// (a file an earlier test dropped is closed by its finalizer).
	if n := openIn(t, dir); n < len(rs) {
		t.Fatalf("%d descriptors in the log's directory with %d ranges held: files closed under the ranges", n, len(rs))
	}
	ReleaseRanges(rs)
	if n := openIn(t, dir); n != 0 {
		t.Fatalf("%d descriptors in the log's directory after release", n)
	}
}

// Truncate cutting a range's bytes makes it not Intact; ranges of other
// segments stay intact.
func TestFileRangeTruncate(t *testing.T) {
	l, want := retentionLog(t, t.TempDir())
	defer l.Close()
	rs, _, _, err := l.ReadFile(0, 1<<30, l.LogEndOffset(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ReleaseRanges(rs)
	if err := l.Truncate(want[len(want)-1].base); err != nil {
		t.Fatal(err)
	}
	last := rs[len(rs)-1]
	if last.Intact() {
		t.Fatal("range of the truncated segment still intact")
	}
	if !rs[0].Intact() {
		t.Fatal("range of an untouched segment not intact")
	}
}

// ReadFile sees batches that are only in the write buffer (it writes them
// to the file first).
func TestReadFileFlushesWriteBuffer(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	want := appendAll(t, l, [][]byte{simpleBatch(t, 3, 1000, 10), simpleBatch(t, 2, 2000, 10)})
	rs, n, records, err := l.ReadFile(0, 1<<20, l.LogEndOffset(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ReleaseRanges(rs)
	if got := rangeBytes(t, rs); !bytes.Equal(got, append(bytes.Clone(want[0].data), want[1].data...)) || records != 5 || n != len(got) {
		t.Fatalf("got %d bytes, %d records", len(got), records)
	}
}
