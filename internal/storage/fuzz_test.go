package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
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

// FuzzCleanMarker writes arbitrary bytes as the clean-shutdown marker of a
// closed log (withCRC: with a correct CRC-32C appended, as a well-formed
// but wrong marker would have; without: as a marker torn while being
// overwritten in place). Open must never fail or panic, must never lose or
// invent data the log holds, reads from the start return exactly its
// batches, reads at any offset never panic, and appends continue at the
// log end.
func FuzzCleanMarker(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(dir, Options{IndexIntervalBytes: 64, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 6 {
		if _, err := l.Append(simpleBatch(f, 2, 100*int64(i+1), 10)); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(dir, segmentName(0, logSuffix)))
	if err != nil {
		f.Fatal(err)
	}
	real, err := os.ReadFile(filepath.Join(dir, cleanMarkerName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, false)
	f.Add(real[:len(real)-4], true)
	f.Add(real[:len(real)/2], false)
	v1 := cleanMarkerV1Bytes(0, int64(len(seg)), 12)
	f.Add(v1, false)
	f.Add(v1[:len(v1)-4], true)
	f.Add([]byte{}, false)
	const end = 12
	f.Fuzz(func(t *testing.T, data []byte, withCRC bool) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, logSuffix)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if withCRC {
			data = binary.BigEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		}
		if err := os.WriteFile(filepath.Join(dir, cleanMarkerName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{IndexIntervalBytes: 64, Logger: discardLogger()}
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		if l.LogEndOffset() != end {
			t.Fatalf("end %d, want %d", l.LogEndOffset(), end)
		}
		got, err := l.Read(0, 1<<30, end, nil)
		if err != nil || !bytes.Equal(got, seg) {
			t.Fatalf("read from the start: %d bytes, %v; want the %d written", len(got), err, len(seg))
		}
		for off := int64(0); off < end; off++ {
			_, _ = l.Read(off, 1<<20, end, nil) // a forged index may mislead, never crash
		}
		if base, err := l.Append(simpleBatch(t, 2, 1, 5)); err != nil || base != end {
			t.Fatalf("append: base %d, %v; want %d", base, err, end)
		}
	})
}

// cleanMarkerV1Bytes is a format-1 marker, as brokers before format 2
// wrote it.
func cleanMarkerV1Bytes(base, size, end int64) []byte {
	b := []byte(cleanMagicV1)
	b = binary.BigEndian.AppendUint64(b, uint64(base))
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
