package storage

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestReleaseFiles: a durable log gives up its descriptors and keeps its
// state; reads after ReopenFiles, appends, a Sync of data made durable
// only through the WAL, a Checkpoint and closes (one by one and batched)
// all work on it, reopening what they need, and what they leave is
// trusted or recovered with every batch. A log with data not yet durable,
// or a file range still held, is not released.
func TestReleaseFiles(t *testing.T) {
	opts := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 128}
	for _, step := range []string{"read", "append", "walsync", "checkpoint", "close", "closebatch", "truncate"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(4, uint64(len(step))))
			l := openLog(t, dir, opts)
			want := appendAll(t, l, variedBatches(t, rng, 20))
			segs := len(*l.segs.Load())
			if segs < 2 {
				t.Fatalf("want several segments, have %d", segs)
			}
			// WAL-durable only: appended and marked durable, not synced.
			more := appendAll(t, l, variedBatches(t, rng, 3))
			want = append(want, more...)
			l.MarkDurable(l.LogEndOffset())
			fr, _, _, err := l.ReadFile(0, 1<<20, l.LogEndOffset(), nil)
			if err != nil || len(fr) == 0 {
				t.Fatalf("read file ranges: %v", err)
			}
			if l.ReleaseFiles() {
				t.Fatal("released while a file range holds a segment")
			}
			for _, r := range fr {
				r.Release()
			}
			segs = len(*l.segs.Load())
			before := openIn(t, dir)
			if !l.ReleaseFiles() || !l.Released() || l.OpenFiles() != 0 {
				t.Fatalf("not released (released %v, %d files)", l.Released(), l.OpenFiles())
			}
			if before != segs || openIn(t, dir) != 0 {
				t.Fatalf("%d descriptors open in the log before, %d after; want %d and 0", before, openIn(t, dir), segs)
			}
			if l.ReleaseFiles() {
				t.Fatal("released twice")
			}
			if l.LogEndOffset() != want[len(want)-1].next || l.Size() == 0 || len(l.Segments()) != segs {
				t.Fatal("state lost by the release")
			}
			switch step {
			case "read":
				if err := l.ReopenFiles(); err != nil {
					t.Fatal(err)
				}
				if l.Released() || openIn(t, dir) != segs {
					t.Fatalf("reopen: released %v, %d descriptors, want %d", l.Released(), openIn(t, dir), segs)
				}
				checkLog(t, l, want)
				l = reopenChecked(t, l, dir, opts, want, true)
			case "append":
				want = append(want, appendAll(t, l, variedBatches(t, rng, 5))...)
				if l.Released() {
					t.Fatal("an append did not reopen the files")
				}
				l = reopenChecked(t, l, dir, opts, want, false)
			case "walsync":
				if _, err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				if l.Failed() || l.SyncedOffset() != l.LogEndOffset() {
					t.Fatalf("sync of a released log: failed %v, synced %d", l.Failed(), l.SyncedOffset())
				}
				l = reopenChecked(t, l, dir, opts, want, true)
			case "checkpoint":
				if err := l.Checkpoint(); err != nil || !l.Marked() {
					t.Fatalf("checkpoint: %v, marked %v", err, l.Marked())
				}
				l.crash()
				l = openTrusted(t, dir, opts, want)
			case "close":
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openTrusted(t, dir, opts, want)
			case "closebatch":
				b := NewCloseBatch(dir)
				if err := l.CloseIn(b); err != nil {
					t.Fatal(err)
				}
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
				l = openTrusted(t, dir, opts, want)
			case "truncate":
				if err := l.Truncate(want[len(want)-2].base); err != nil {
					t.Fatal(err)
				}
				want = want[:len(want)-2]
				l = reopenChecked(t, l, dir, opts, want, true)
			}
			_ = l.Close()
			if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) > 0 {
				t.Fatalf("tmp files left: %v", m)
			}
		})
	}
}

// TestReleaseNotDurable: data not yet durable keeps the files (the
// committer may read it back from them).
func TestReleaseNotDurable(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(1, 2)), 3))
	if l.ReleaseFiles() {
		t.Fatal("released with data not durable")
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if !l.ReleaseFiles() {
		t.Fatal("not released once durable")
	}
	if err := os.Remove(filepath.Join(l.Dir(), segmentName(0, logSuffix))); err != nil {
		t.Fatal(err)
	}
	// A file that cannot be reopened is an error for the call, not a
	// failed log.
	if err := l.ReopenFiles(); err == nil || !l.Released() || l.Failed() {
		t.Fatalf("reopen of a missing file: %v, released %v, failed %v", err, l.Released(), l.Failed())
	}
}

// openIn counts this process's descriptors open on files in dir.
func openIn(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && filepath.Dir(target) == dir {
			n++
		}
	}
	return n
}

// openTrusted opens the log in dir and checks that it was trusted (its
// marker describes it) and holds exactly want.
func openTrusted(t *testing.T, dir string, opts Options, want []appended) *Log {
	t.Helper()
	l := openLog(t, dir, opts)
	if !l.Marked() {
		t.Fatal("not trusted on open")
	}
	checkLog(t, l, want)
	return l
}
