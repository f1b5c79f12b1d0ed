package partition

import (
	"testing"

	"github.com/chronik-stream/chronik/internal/storage"
)

func TestExpiredSegments(t *testing.T) {
	const now = 1_000_000
	seg := func(base, next, size, ts int64, sealed bool) storage.SegmentInfo {
		return storage.SegmentInfo{Base: base, Next: next, Size: size, MaxTimestamp: ts, Sealed: sealed}
	}
	segs := []storage.SegmentInfo{
		seg(0, 10, 100, now-5000, true),
		seg(10, 20, 100, now-3000, true),
		seg(20, 30, 100, now-1000, true),
		seg(30, 35, 50, now, false), // active
	}
	for _, tc := range []struct {
		name                  string
		start, hwm, ms, bytes int64
		budget, want          int
	}{
		{"nothing set", 0, 35, -1, -1, 10, 0},
		{"time", 0, 35, 2000, -1, 10, 2},
		{"time: the active one is young", 0, 35, 0, -1, 10, 3},
		{"size keeps at least the bound", 0, 35, -1, 150, 10, 2},
		{"size exact", 0, 35, -1, 250, 10, 1},
		{"size zero: the active one too", 0, 35, -1, 0, 10, 4},
		{"size: active only when hwm is the log end", 0, 34, -1, 0, 10, 3},
		{"below hwm only", 0, 15, 0, -1, 10, 1},
		{"budget", 0, 35, 0, -1, 2, 2},
		{"below start always, the active one never", 35, 35, -1, -1, 10, 3},
		{"stops at the first young one", 0, 35, 4000, -1, 10, 1},
	} {
		if got := expiredSegments(segs, tc.start, tc.hwm, now, tc.ms, tc.bytes, tc.budget); got != tc.want {
			t.Errorf("%s: %d segments expired, want %d", tc.name, got, tc.want)
		}
	}
	// An active segment whose records are all older than retention.ms goes
	// (the caller rolls it first); an empty one never does.
	old := []storage.SegmentInfo{seg(0, 10, 100, now-5000, true), seg(10, 12, 50, now-4000, false)}
	if got := expiredSegments(old, 0, 12, now, 1000, -1, 10); got != 2 {
		t.Errorf("expired active segment: %d expired, want 2", got)
	}
	empty := []storage.SegmentInfo{seg(0, 10, 100, now-5000, true), seg(10, 10, 0, -1, false)}
	if got := expiredSegments(empty, 0, 10, now, 0, 0, 10); got != 1 {
		t.Errorf("empty active segment: %d expired, want 1", got)
	}
	// Without record timestamps the file time counts, as in Kafka.
	noTS := []storage.SegmentInfo{
		{Base: 0, Next: 10, Size: 100, MaxTimestamp: -1, ModTimeMs: now - 5000, Sealed: true},
		{Base: 10, Next: 12, Size: 50, MaxTimestamp: -1, ModTimeMs: now, Sealed: false},
	}
	if got := expiredSegments(noTS, 0, 12, now, 1000, -1, 10); got != 1 {
		t.Errorf("segments without timestamps: %d expired, want 1", got)
	}
}
