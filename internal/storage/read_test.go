package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

type recordTS struct{ offset, ts int64 }

func TestOffsetForTimestamp(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1500, IndexIntervalBytes: 150}
	l := openLog(t, dir, opts)
	rng := rand.New(rand.NewPCG(12, 13))
	var recs []recordTS
	codecs := []int8{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}
	ts := int64(1_700_000_000_000)
	for i := range 120 {
		n := 1 + rng.IntN(6)
		spec := batchSpec{codec: codecs[i%len(codecs)], xerial: i%10 == 2, logAppendTime: i%7 == 6, valueSize: rng.IntN(80)}
		for range n {
			// Mostly rising, but records inside a batch and batches may go
			// back in time, as producers' clocks do.
			spec.ts = append(spec.ts, ts+int64(rng.IntN(40))-15)
			ts += int64(rng.IntN(4))
		}
		b := makeBatch(t, spec)
		h, _ := ParseBatchHeader(b)
		base, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		for j, rts := range spec.ts {
			if spec.logAppendTime {
				rts = h.MaxTimestamp
			}
			recs = append(recs, recordTS{base + int64(j), rts})
		}
	}
	if n := countFiles(t, dir, ".log"); n < 5 {
		t.Fatalf("want several segments, got %d", n)
	}
	check := func(t *testing.T, l *Log) {
		minTS, maxTS := recs[0].ts, recs[0]
		for _, r := range recs {
			minTS = min(minTS, r.ts)
			if r.ts > maxTS.ts {
				maxTS = r
			}
		}
		for q := minTS - 2; q <= maxTS.ts+2; q++ {
			want := recordTS{-1, -1}
			for _, r := range recs {
				if r.ts >= q {
					want = r
					break
				}
			}
			off, gotTS, ok := l.OffsetForTimestamp(q)
			if ok != (want.offset >= 0) || off != want.offset || gotTS != want.ts {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d", q, off, gotTS, ok, want.offset, want.ts)
			}
		}
		if gotTS, off := l.MaxTimestamp(); gotTS != maxTS.ts || off != maxTS.offset {
			t.Fatalf("MaxTimestamp = %d at %d, want %d at %d", gotTS, off, maxTS.ts, maxTS.offset)
		}
	}
	t.Run("live", func(t *testing.T) { check(t, l) })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	t.Run("after-clean-close", func(t *testing.T) { check(t, l) })
	l.crash()
	l = openLog(t, dir, opts)
	defer l.Close()
	t.Run("after-crash", func(t *testing.T) { check(t, l) })
}

// TestConcurrentAppendSyncRead runs writers, a syncer and readers together;
// under -race it also checks the locking. Readers only read below the durable
// offset, as the broker does, and verify every batch they get.
func TestConcurrentAppendSyncRead(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 8 << 10, IndexIntervalBytes: 512})
	defer l.Close()
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	var done atomic.Bool
	errc := make(chan error, 16)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				var err error
				if i%5 == 0 {
					_, err = l.AppendBatches([][]byte{simpleBatch(t, 2, int64(i), w*10), simpleBatch(t, 1, int64(i), 5)})
				} else {
					_, err = l.Append(simpleBatch(t, 1+i%4, int64(i), 20+w))
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		last := int64(0)
		for !done.Load() {
			d, err := l.Sync()
			if err != nil || d < last {
				errc <- errors.Join(err, errors.New("durable offset went backwards"))
				return
			}
			last = d
		}
	}()
	for r := range 3 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			var buf []byte
			for !done.Load() {
				hw := l.DurableOffset()
				if hw == 0 {
					continue
				}
				off := rng.Int64N(hw)
				var err error
				buf, err = l.Read(off, 1+rng.IntN(4096), hw, buf[:0])
				if err != nil {
					errc <- err
					return
				}
				if err := checkBatches(buf, off, hw); err != nil {
					errc <- err
					return
				}
				_, _, _ = l.OffsetForTimestamp(int64(rng.IntN(perWriter)))
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	bg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	d, err := l.Sync()
	if err != nil || d != l.LogEndOffset() {
		t.Fatalf("final sync %d %v, end %d", d, err, l.LogEndOffset())
	}
	// Every offset is readable exactly once, in order.
	next := int64(0)
	err = l.ScanBatches(0, func(h BatchHeader) error {
		if h.BaseOffset != next {
			return errors.New("gap in offsets")
		}
		next = h.NextOffset()
		return nil
	})
	if err != nil || next != d {
		t.Fatalf("scan: %v, next %d, want %d", err, next, d)
	}
}

// checkBatches validates a Read result: whole valid batches, contiguous, the
// first containing off, all below upTo.
func checkBatches(b []byte, off, upTo int64) error {
	if len(b) == 0 {
		return errors.New("empty read below the high watermark")
	}
	next := int64(-1)
	return SplitBatches(b, func(batch []byte) error {
		h, err := ValidateBatch(batch)
		if err != nil {
			return err
		}
		if next < 0 && (h.BaseOffset > off || h.NextOffset() <= off) {
			return errors.New("first batch does not contain the offset")
		}
		if next >= 0 && h.BaseOffset != next {
			return errors.New("batches not contiguous")
		}
		if h.BaseOffset >= upTo {
			return errors.New("batch at or above upTo")
		}
		next = h.NextOffset()
		return nil
	})
}

func TestDecompress(t *testing.T) {
	in := bytes.Repeat([]byte("chronik decompress "), 500)
	for _, tc := range []struct {
		name   string
		codec  int8
		xerial bool
	}{{"none", CodecNone, false}, {"gzip", CodecGzip, false}, {"snappy", CodecSnappy, false},
		{"snappy-xerial", CodecSnappy, true}, {"lz4", CodecLZ4, false}, {"zstd", CodecZstd, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := compress(t, tc.codec, tc.xerial, in)
			out, err := Decompress(tc.codec, c)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("round trip: %v", err)
			}
			if tc.codec == CodecNone {
				return
			}
			if _, err := Decompress(tc.codec, []byte("definitely not compressed data")); err == nil {
				t.Fatal("garbage decompressed without error")
			}
		})
	}
	if _, err := Decompress(7, nil); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 7: %v", err)
	}
}

func TestDecompressLimit(t *testing.T) {
	defer func(old int) { maxDecompressed = old }(maxDecompressed)
	maxDecompressed = 1 << 20
	big := make([]byte, maxDecompressed+1)
	for _, codec := range []int8{CodecGzip, CodecLZ4, CodecZstd, CodecSnappy} {
		c := compress(t, codec, false, big)
		if _, err := Decompress(codec, c); !errors.Is(err, ErrDecompressTooBig) {
			t.Fatalf("codec %d: %v, want ErrDecompressTooBig", codec, err)
		}
	}
}

// A batch whose CRC matches but whose records do not decode (the client sent
// them that way) is answered at batch granularity instead of failing.
func TestOffsetForTimestampUndecodable(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	if _, err := l.Append(simpleBatch(t, 2, 100, 5)); err != nil {
		t.Fatal(err)
	}
	bad := simpleBatch(t, 3, 200, 5)
	bad[offAttributes+1] |= byte(CodecGzip) // records are not gzip data
	SetLogAppendTime(bad, 202)              // recompute the CRC ...
	bad[offAttributes+1] &^= AttrTimestampType
	binary.BigEndian.PutUint32(bad[offCRC:], crc32.Checksum(bad[offAttributes:], castagnoli))
	if _, err := ValidateBatch(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(bad); err != nil {
		t.Fatal(err)
	}
	if off, ts, ok := l.OffsetForTimestamp(201); !ok || off != 2 || ts != 202 {
		t.Fatalf("got %d, %d, %v; want batch base 2 and its max timestamp", off, ts, ok)
	}
	if ts, off := l.MaxTimestamp(); ts != 202 || off != 2 {
		t.Fatalf("MaxTimestamp %d at %d", ts, off)
	}
}

// ScanBatches reads headers through a 64 KiB buffer: batches straddling its
// refills, and a start in the middle, give every header exactly once.
func TestScanBatchesAcrossBufferRefills(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	var bases []int64
	for i := range 600 {
		b := simpleBatch(t, 1+i%3, 1000, 100+(i*37)%700) // 0.1-0.8 KB each: ~270 KB in all
		base, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base)
	}
	for _, from := range []int64{0, bases[123] + 1, bases[599]} {
		var got []int64
		if err := l.ScanBatches(from, func(h BatchHeader) error {
			got = append(got, h.BaseOffset)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		i := 0 // the first batch returned is the one holding from
		for i+1 < len(bases) && bases[i+1] <= from {
			i++
		}
		if want := bases[i:]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("from %d: %d headers (first %v), want %d (first %v)", from, len(got), got[:min(3, len(got))], len(want), want[:min(3, len(want))])
		}
	}
}
