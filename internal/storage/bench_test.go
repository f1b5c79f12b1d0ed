package storage

import (
	"testing"
)

// TestAppendAllocs pins the hot-path promise: no allocation per Append in
// steady state (slice growth of the sparse index amortises to zero).
func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := openLog(t, t.TempDir(), Options{Logger: discardLogger()})
	defer l.Close()
	b := simpleBatch(t, 10, 1, 100)
	for range 100 {
		if _, err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(2000, func() { _, _ = l.Append(b) }); n != 0 {
		t.Fatalf("Append allocates %.1f times per call", n)
	}
	var dst []byte
	if n := testing.AllocsPerRun(500, func() { dst, _ = l.Read(50, 64<<10, l.LogEndOffset(), dst[:0]) }); n != 0 {
		t.Fatalf("Read allocates %.1f times per call", n)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name      string
		syncEvery int
	}{{"nosync", 0}, {"sync-every-100", 100}, {"sync-every-1000", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			l := openLog(b, b.TempDir(), Options{Logger: discardLogger()})
			defer l.Close()
			batch := simpleBatch(b, 10, 1, 100) // ~1.3 KB, 10 records
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := l.Append(batch); err != nil {
					b.Fatal(err)
				}
				i++
				if bc.syncEvery > 0 && i%bc.syncEvery == 0 {
					if _, err := l.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{SegmentBytes: 16 << 20, Logger: discardLogger()})
	defer l.Close()
	batch := simpleBatch(b, 10, 1, 100)
	for range 50_000 { // ~65 MB, several segments
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	for _, bc := range []struct {
		name     string
		maxBytes int
	}{{"1MiB", 1 << 20}, {"64KiB", 64 << 10}, {"one-batch", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			var dst []byte
			off := int64(0)
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				var err error
				dst, err = l.Read(off, bc.maxBytes, end, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(dst))
				off = (off + 7919) % end // jump around, landing mid-batch
			}
			b.SetBytes(n / int64(b.N))
		})
	}
}
