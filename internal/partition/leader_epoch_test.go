package partition

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLeaderEpochCheckpointFormat(t *testing.T) {
	in := []EpochEntry{{0, 0}, {3, 1200}, {7, 1500}}
	raw := formatLeaderEpochs(in)
	if string(raw) != "0\n3\n0 0\n3 1200\n7 1500\n" {
		t.Fatalf("format = %q", raw)
	}
	out, err := parseLeaderEpochs(raw)
	if err != nil || len(out) != 3 || out[2] != in[2] {
		t.Fatalf("parse = %v, %v", out, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n0 0\n", "0\n1\nx y\n", "0\n2\n3 0\n1 5\n", "0\n2\n1 9\n2 5\n", "0\n1\n-1 0\n"} {
		if _, err := parseLeaderEpochs([]byte(bad)); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestLeaderEpochEndOffsetFor(t *testing.T) {
	le := &leaderEpochs{current: 7, entries: []EpochEntry{{1, 10}, {3, 100}, {7, 150}}}
	tests := []struct {
		req       int32
		logStart  int64
		wantEpoch int32
		wantEnd   int64
	}{
		{7, 0, 7, 200},   // current: log end
		{3, 0, 3, 150},   // older: start of the next
		{5, 0, 3, 150},   // unknown between: largest known below
		{1, 0, 1, 100},   //
		{0, 0, -1, -1},   // below the first
		{8, 0, -1, -1},   // above the current
		{-1, 0, -1, -1},  // undefined
		{1, 120, -1, -1}, // epoch 1 ended before the log start
		{3, 120, 3, 150},
	}
	for _, tt := range tests {
		e, end := le.endOffsetFor(tt.req, tt.logStart, 200)
		if e != tt.wantEpoch || end != tt.wantEnd {
			t.Errorf("endOffsetFor(%d, start %d) = %d, %d; want %d, %d", tt.req, tt.logStart, e, end, tt.wantEpoch, tt.wantEnd)
		}
	}
}

// FuzzParseLeaderEpochs: the checkpoint decoder never panics, and what it
// accepts is ascending and re-encodes to something it reads back the same.
func FuzzParseLeaderEpochs(f *testing.F) {
	f.Add([]byte("0\n2\n0 0\n3 1200\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\n-1 5\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		entries, err := parseLeaderEpochs(raw)
		if err != nil {
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].Epoch <= entries[i-1].Epoch || entries[i].Start < entries[i-1].Start {
				t.Fatalf("accepted non-ascending %v", entries)
			}
		}
		again, err := parseLeaderEpochs(formatLeaderEpochs(entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}

// truncateFromStart follows Kafka's LeaderEpochFileCache.truncateFromStart:
// entries at or below the new start go, the latest of them stays with its
// start moved up, and the file is rewritten (and parses back).
func TestLeaderEpochTruncateFromStart(t *testing.T) {
	dir := t.TempDir()
	le := &leaderEpochs{path: filepath.Join(dir, LeaderEpochFile), current: 7}
	le.entries = []EpochEntry{{1, 10}, {3, 100}, {7, 150}}
	if err := le.write(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		start int64
		want  []EpochEntry
	}{
		{5, []EpochEntry{{1, 10}, {3, 100}, {7, 150}}}, // below the first: nothing
		{10, []EpochEntry{{1, 10}, {3, 100}, {7, 150}}},
		{50, []EpochEntry{{1, 50}, {3, 100}, {7, 150}}},
		{100, []EpochEntry{{3, 100}, {7, 150}}},
		{120, []EpochEntry{{3, 120}, {7, 150}}},
		{400, []EpochEntry{{7, 400}}}, // past every entry: the latest epoch from the start
		{300, []EpochEntry{{7, 400}}}, // never back
	} {
		if err := le.truncateFromStart(tt.start); err != nil {
			t.Fatal(err)
		}
		if got := le.snapshot(); !slices.Equal(got, tt.want) {
			t.Fatalf("truncateFromStart(%d) = %v, want %v", tt.start, got, tt.want)
		}
		raw, err := os.ReadFile(le.path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseLeaderEpochs(raw); err != nil || !slices.Equal(got, tt.want) {
			t.Fatalf("checkpoint after truncateFromStart(%d) = %v, %v", tt.start, got, err)
		}
	}
	// A failed write leaves the entries as they were, for the next call.
	le.path = filepath.Join(dir, "missing", LeaderEpochFile)
	if err := le.truncateFromStart(500); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if got := le.snapshot(); !slices.Equal(got, []EpochEntry{{7, 400}}) {
		t.Fatalf("after a failed write: %v", got)
	}
}
