package storage

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func segmentFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return m // Glob sorts, and names sort by base offset
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
}

func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecovery damages a crashed (or cleanly closed) log in the ways a crash,
// a power loss or a bad disk can, then checks that Open recovers everything
// before the damage, nothing after it, and that appends continue at the
// right offset.
func TestRecovery(t *testing.T) {
	type damage func(t *testing.T, dir string, want []appended) (keep int)
	tail := func(t *testing.T, dir string) string {
		logs := segmentFiles(t, dir, ".log")
		return logs[len(logs)-1]
	}
	all := func(want []appended) int { return len(want) }
	cases := []struct {
		name  string
		clean bool
		hurt  damage
	}{
		{"crash-no-damage", false, func(t *testing.T, dir string, w []appended) int { return all(w) }},
		{"clean-no-damage", true, func(t *testing.T, dir string, w []appended) int { return all(w) }},
		{"garbage-appended", false, func(t *testing.T, dir string, w []appended) int {
			appendFile(t, tail(t, dir), []byte("this is not a record batch, just noise from a torn write"))
			return all(w)
		}},
		{"garbage-appended-after-clean-close", true, func(t *testing.T, dir string, w []appended) int {
			appendFile(t, tail(t, dir), bytes.Repeat([]byte{0x7f}, 100))
			return all(w)
		}},
		{"zeros-appended", false, func(t *testing.T, dir string, w []appended) int {
			appendFile(t, tail(t, dir), make([]byte, 4096))
			return all(w)
		}},
		{"torn-half-batch-appended", false, func(t *testing.T, dir string, w []appended) int {
			b := simpleBatch(t, 3, 99, 100)
			SetBaseOffset(b, w[len(w)-1].next)
			appendFile(t, tail(t, dir), b[:len(b)/2])
			return all(w)
		}},
		{"last-batch-truncated", false, func(t *testing.T, dir string, w []appended) int {
			p := tail(t, dir)
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-int64(len(w[len(w)-1].data))/2); err != nil {
				t.Fatal(err)
			}
			return len(w) - 1
		}},
		{"last-batch-crc", false, func(t *testing.T, dir string, w []appended) int {
			p := tail(t, dir)
			fi, _ := os.Stat(p)
			flipByte(t, p, fi.Size()-1)
			return len(w) - 1
		}},
		{"last-batch-crc-after-clean-close", true, func(t *testing.T, dir string, w []appended) int {
			// The marker still matches the size, so only a CRC check would
			// notice; the trusted path does not check CRCs of a clean tail.
			// What it must not do is refuse to open or lose earlier data.
			p := tail(t, dir)
			fi, _ := os.Stat(p)
			flipByte(t, p, fi.Size()-1)
			return -1
		}},
		{"tail-only-garbage", false, func(t *testing.T, dir string, w []appended) int {
			p := tail(t, dir)
			base, _ := parseSegmentName(filepath.Base(p), logSuffix)
			if err := os.WriteFile(p, bytes.Repeat([]byte("garbage!"), 100), 0o644); err != nil {
				t.Fatal(err)
			}
			return countBefore(w, base)
		}},
		{"tail-zero-length", false, func(t *testing.T, dir string, w []appended) int {
			p := tail(t, dir)
			base, _ := parseSegmentName(filepath.Base(p), logSuffix)
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
			return countBefore(w, base)
		}},
		{"empty-trailing-segment", false, func(t *testing.T, dir string, w []appended) int {
			p := filepath.Join(dir, segmentName(w[len(w)-1].next, logSuffix))
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return all(w)
		}},
		{"trailing-segment-not-contiguous", false, func(t *testing.T, dir string, w []appended) int {
			p := filepath.Join(dir, segmentName(w[len(w)-1].next+5, logSuffix))
			if err := os.WriteFile(p, simpleBatch(t, 1, 1, 1), 0o644); err != nil {
				t.Fatal(err)
			}
			return all(w)
		}},
		{"index-files-deleted", false, func(t *testing.T, dir string, w []appended) int {
			for _, p := range append(segmentFiles(t, dir, ".index"), segmentFiles(t, dir, ".timeindex")...) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			return all(w)
		}},
		{"index-files-garbled", true, func(t *testing.T, dir string, w []appended) int {
			rng := rand.New(rand.NewPCG(9, 9))
			for _, p := range append(segmentFiles(t, dir, ".index"), segmentFiles(t, dir, ".timeindex")...) {
				b := make([]byte, 8*(1+rng.IntN(20)))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return all(w)
		}},
		{"index-points-past-end", true, func(t *testing.T, dir string, w []appended) int {
			for _, p := range segmentFiles(t, dir, ".index") {
				appendFile(t, p, []byte{0x7f, 0, 0, 0, 0x7f, 0, 0, 0})
			}
			return all(w)
		}},
		{"index-odd-length", true, func(t *testing.T, dir string, w []appended) int {
			for _, p := range segmentFiles(t, dir, ".timeindex") {
				appendFile(t, p, []byte{1, 2, 3})
			}
			return all(w)
		}},
		{"sealed-segment-corrupt-without-index", false, func(t *testing.T, dir string, w []appended) int {
			// A sealed segment without index files is validated; a bad batch
			// in it cuts the log there and drops every later segment.
			logs := segmentFiles(t, dir, ".log")
			p := logs[len(logs)/2]
			base, _ := parseSegmentName(filepath.Base(p), logSuffix)
			for _, suf := range []string{indexSuffix, timeIndexSuffix} {
				_ = os.Remove(filepath.Join(dir, segmentName(base, suf)))
			}
			i := countBefore(w, base) + 1 // second batch of that segment
			flipByte(t, p, positionIn(w, base, i)+BatchHeaderSize)
			return i
		}},
		{"stray-files", false, func(t *testing.T, dir string, w []appended) int {
			for _, name := range []string{"00000000000000000000.index.tmp", "clean-shutdown.tmp", segmentName(999999, ".index"), segmentName(999999, ".timeindex")} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return all(w)
		}},
		{"garbled-clean-marker", true, func(t *testing.T, dir string, w []appended) int {
			flipByte(t, filepath.Join(dir, cleanMarkerName), 12)
			return all(w)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 1500, IndexIntervalBytes: 200}
			l := openLog(t, dir, opts)
			rng := rand.New(rand.NewPCG(10, 11))
			want := appendAll(t, l, variedBatches(t, rng, 60))
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if tc.clean {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				l.crash()
			}
			keep := tc.hurt(t, dir, want)
			l = openLog(t, dir, opts)
			defer l.Close()
			if keep < 0 {
				// Only require earlier data intact and an appendable log.
				keep = len(want) - 1
				want = want[:keep]
				got, err := l.Read(0, 1<<30, want[keep-1].next, nil)
				if err != nil || !bytes.HasPrefix(got, concat(want)) {
					t.Fatalf("data before damage: %d bytes, %v", len(got), err)
				}
				if err := l.Truncate(want[keep-1].next); err != nil {
					t.Fatal(err)
				}
			}
			want = want[:keep]
			checkLog(t, l, want)
			if l.DurableOffset() != l.LogEndOffset() || l.Dirty() {
				t.Fatalf("after open: durable %d, end %d", l.DurableOffset(), l.LogEndOffset())
			}
			// A marker describes the log exactly while it is unchanged
			// and trusted; after the first append none does (one may stay,
			// stale or torn, never matching the tail), so a crash from
			// then on is unclean.
			if d := markerDescribes(t, l); l.Marked() != d {
				t.Fatalf("marked %v, marker describes the log %v", l.Marked(), d)
			}
			for _, pat := range []string{"*.tmp", segmentName(999999, "*")} {
				if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
					t.Fatalf("stray files survived: %v", m)
				}
			}
			more := appendAll(t, l, variedBatches(t, rng, 20))
			if markerDescribes(t, l) || l.Marked() {
				t.Fatal("a clean marker describes the log after an append")
			}
			if len(want) > 0 && more[0].base != want[len(want)-1].next {
				t.Fatalf("append after recovery at %d, want %d", more[0].base, want[len(want)-1].next)
			}
			want = append(want, more...)
			checkLog(t, l, want)

			// And the recovered log survives another crash and a clean cycle.
			l = reopenChecked(t, l, dir, opts, want, true)
			l = reopenChecked(t, l, dir, opts, want, false)
		})
	}
}

func concat(w []appended) []byte {
	var b []byte
	for _, a := range w {
		b = append(b, a.data...)
	}
	return b
}

// countBefore is the number of batches below offset.
func countBefore(w []appended, offset int64) int {
	n := 0
	for _, a := range w {
		if a.base < offset {
			n++
		}
	}
	return n
}

// positionIn is the file position of batch i in the segment starting at base.
func positionIn(w []appended, base int64, i int) int64 {
	var pos int64
	for _, a := range w[:i] {
		if a.base >= base {
			pos += int64(len(a.data))
		}
	}
	return pos
}

// TestCleanReopenIsTrusted checks that a clean Close lets the next Open skip
// validating the tail: a CRC flip in the tail goes unnoticed (by design),
// whereas after a crash it is caught.
func TestCleanReopenIsTrusted(t *testing.T) {
	for _, clean := range []bool{true, false} {
		dir := t.TempDir()
		l := openLog(t, dir, Options{})
		want := appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(1, 1)), 10))
		if clean {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			l.crash()
		}
		p := filepath.Join(dir, segmentName(0, logSuffix))
		fi, _ := os.Stat(p)
		flipByte(t, p, fi.Size()-1)
		l = openLog(t, dir, Options{})
		end := want[len(want)-1].next
		if clean && l.LogEndOffset() != end {
			t.Fatalf("clean: end %d, want %d (tail should be trusted)", l.LogEndOffset(), end)
		}
		if !clean && l.LogEndOffset() != want[len(want)-1].base {
			t.Fatalf("crash: end %d, want %d (corrupt batch should be cut)", l.LogEndOffset(), want[len(want)-1].base)
		}
		_ = l.Close()
	}
}

func TestOpenEmptyAndMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l := openLog(t, dir, Options{})
	if l.LogStartOffset() != 0 || l.LogEndOffset() != 0 || l.Size() != 0 {
		t.Fatal("new log not empty")
	}
	if got, err := l.Read(0, 100, 0, nil); err != nil || len(got) != 0 {
		t.Fatalf("read empty: %v", err)
	}
	if ts, off := l.MaxTimestamp(); ts != -1 || off != -1 {
		t.Fatalf("max timestamp of empty log: %d %d", ts, off)
	}
	if _, _, ok := l.OffsetForTimestamp(0); ok {
		t.Fatal("timestamp found in empty log")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{})
	defer l.Close()
	if l.LogEndOffset() != 0 {
		t.Fatal("reopened empty log not empty")
	}
}

// markerDescribes reports whether the clean-shutdown marker on disk is
// valid and names l's tail as it is (base, size, end).
func markerDescribes(t *testing.T, l *Log) bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(l.Dir(), cleanMarkerName))
	if err != nil {
		return false
	}
	m, ok := decodeCleanMarker(raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	return ok && m.base == l.active.base && m.size == l.active.size.Load() && m.end == l.end.Load()
}
