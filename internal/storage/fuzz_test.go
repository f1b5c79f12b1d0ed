package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecover writes arbitrary bytes as the tail segment, after a sealed
// segment of valid batches (or as the only segment), and checks that Open
// never fails or panics, keeps the valid prefix, serves only whole valid
// batches and keeps appending at the right offset across a crash.
func FuzzRecover(f *testing.F) {
	b1 := simpleBatch(f, 3, 100, 10)
	b2 := simpleBatch(f, 2, 200, 10)
	SetBaseOffset(b2, 3)
	good := append(bytes.Clone(b1), b2...)
	f.Add([]byte{}, false)
	f.Add([]byte("garbage garbage garbage garbage garbage garbage garbage garbage"), false)
	f.Add(good, true)
	f.Add(good[:len(good)-7], true)
	f.Add(append(bytes.Clone(good), make([]byte, 100)...), true)
	shifted := bytes.Clone(b2) // right shape, wrong base offset for a tail at 0
	f.Add(shifted, true)
	tail := bytes.Clone(b1)
	SetBaseOffset(tail, 5)
	f.Add(tail, false)
	f.Add(append(bytes.Clone(tail), b2[:30]...), false)

	f.Fuzz(func(t *testing.T, data []byte, single bool) {
		dir := t.TempDir()
		prefixEnd := int64(0)
		if !single {
			if err := os.WriteFile(filepath.Join(dir, segmentName(0, logSuffix)), good, 0o644); err != nil {
				t.Fatal(err)
			}
			prefixEnd = 5
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(prefixEnd, logSuffix)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{SegmentBytes: 1 << 20, IndexIntervalBytes: 64, Logger: discardLogger()}
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		end := l.LogEndOffset()
		if end < prefixEnd || l.DurableOffset() != end {
			t.Fatalf("end %d below valid prefix %d, durable %d", end, prefixEnd, l.DurableOffset())
		}
		start := l.LogStartOffset()
		got, err := l.Read(start, 1<<30, end, nil)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if end > start {
			if err := checkBatches(got, start, end); err != nil {
				t.Fatalf("read: %v", err)
			}
		}
		if !single && !bytes.HasPrefix(got, good) {
			t.Fatal("valid sealed segment damaged")
		}
		base, err := l.Append(simpleBatch(t, 2, 1, 5))
		if err != nil || base != end {
			t.Fatalf("append: base %d, %v; want %d", base, err, end)
		}
		if _, err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		l.crash()
		l, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if l.LogEndOffset() != end+2 {
			t.Fatalf("after reopen: end %d, want %d", l.LogEndOffset(), end+2)
		}
		_ = l.Close()
	})
}

// FuzzValidateBatch feeds arbitrary bytes to the batch parsers. They must
// never panic, and a batch they accept must be self-consistent.
func FuzzValidateBatch(f *testing.F) {
	b := simpleBatch(f, 3, 1, 10)
	f.Add(b)
	f.Add(b[:BatchHeaderSize])
	f.Add(b[:len(b)-1])
	f.Add(append(bytes.Clone(b), b...))
	f.Add(makeBatch(f, batchSpec{ts: []int64{5, 3, 9}, codec: CodecZstd}))
	f.Add(makeBatch(f, batchSpec{ts: []int64{5}, codec: CodecSnappy, xerial: true}))
	f.Add([]byte{})
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ValidateBatch(data); err == nil {
			if h.Size() != len(data) || h.Magic != 2 {
				t.Fatalf("accepted inconsistent batch: %+v, %d bytes", h, len(data))
			}
			_, _, _, _ = firstRecordAtLeast(data, 0, 0)
		}
		_ = SplitBatches(data, func(batch []byte) error {
			if len(batch) < BatchHeaderSize {
				t.Fatalf("split produced %d bytes", len(batch))
			}
			_, _ = ValidateBatch(batch)
			return nil
		})
		// Record decoding does not need a valid CRC, so fuzz it directly:
		// the records section is client data too.
		_, _, _, _ = firstRecordAtLeast(data, 0, 0)
	})
}

// FuzzDecompress: every codec must reject garbage without panicking.
func FuzzDecompress(f *testing.F) {
	in := []byte("some records some records some records")
	for codec := CodecNone; codec <= CodecZstd; codec++ {
		f.Add(codec, compress(f, codec, false, in))
	}
	f.Add(CodecSnappy, compress(f, CodecSnappy, true, in))
	f.Fuzz(func(t *testing.T, codec int8, data []byte) {
		out, err := Decompress(codec, data)
		if err == nil && len(out) > MaxDecompressedBytes {
			t.Fatal("limit exceeded")
		}
	})
}
