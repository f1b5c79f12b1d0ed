package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// corruptLastByte flips the tail segment's last byte: a log reopened
// trusted keeps its end offset, a validated one cuts the last batch.
func corruptLastByte(t *testing.T, dir string, base int64) {
	t.Helper()
	p := filepath.Join(dir, segmentName(base, logSuffix))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, p, fi.Size()-1)
}

// TestMarkerKeptWhileUnchanged: a log opened clean and never written keeps
// its marker, closes without a single fsync and is trusted after a crash.
func TestMarkerKeptWhileUnchanged(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	want := appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(2, 2)), 10))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var fsyncs atomic.Int32
	opts := Options{Fsync: func(f *os.File) error { fsyncs.Add(1); return f.Sync() }}
	l = openLog(t, dir, opts)
	if !l.Marked() {
		t.Fatal("clean reopen: not marked")
	}
	checkLog(t, l, want)
	marker := filepath.Join(dir, cleanMarkerName)
	before, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fsyncs.Load(); n != 0 {
		t.Fatalf("closing an unchanged log fsynced %d times", n)
	}
	if after, err := os.Stat(marker); err != nil || !os.SameFile(before, after) {
		t.Fatalf("closing an unchanged log rewrote its marker: %v", err)
	}
	// Opened and killed without a write: still trusted.
	l = openLog(t, dir, opts)
	l.crash()
	corruptLastByte(t, dir, 0)
	l = openLog(t, dir, opts)
	defer l.Close()
	if end := want[len(want)-1].next; l.LogEndOffset() != end {
		t.Fatalf("end %d after open+kill of an unchanged log, want %d (trusted)", l.LogEndOffset(), end)
	}
}

// TestCheckpointMakesCrashTrusted: after Checkpoint a kill finds the log
// trusted; an append after the checkpoint makes the next kill unclean again.
func TestCheckpointMakesCrashTrusted(t *testing.T) {
	for _, appendAfter := range []bool{false, true} {
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(3, 3))
		l := openLog(t, dir, Options{})
		want := appendAll(t, l, variedBatches(t, rng, 10))
		if l.Marked() {
			t.Fatal("marked after appends")
		}
		if err := l.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if !l.Marked() || l.Dirty() || l.SyncedOffset() != l.LogEndOffset() {
			t.Fatalf("after checkpoint: marked %v, synced %d, end %d", l.Marked(), l.SyncedOffset(), l.LogEndOffset())
		}
		if appendAfter {
			want = append(want, appendAll(t, l, variedBatches(t, rng, 3))...)
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		l.crash()
		corruptLastByte(t, dir, 0)
		l = openLog(t, dir, Options{})
		end, cut := want[len(want)-1].next, want[len(want)-1].base
		switch {
		case !appendAfter && l.LogEndOffset() != end:
			t.Fatalf("kill after checkpoint: end %d, want %d (trusted)", l.LogEndOffset(), end)
		case appendAfter && l.LogEndOffset() != cut:
			t.Fatalf("kill after checkpoint and append: end %d, want %d (validated, corrupt batch cut)", l.LogEndOffset(), cut)
		}
		_ = l.Close()
	}
}

// TestTruncateUnmarks: truncating a log opened clean removes the marker
// before the cut, so a kill afterwards validates the tail.
func TestTruncateUnmarks(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	want := appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(4, 4)), 10))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{})
	if err := l.Truncate(want[5].base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerName)); !os.IsNotExist(err) || l.Marked() {
		t.Fatalf("marker after truncate: %v", err)
	}
	l.crash()
	l = openLog(t, dir, Options{})
	defer l.Close()
	checkLog(t, l, want[:5])
}

// TestSyncPoint: PrepareSync writes the buffer and Complete marks exactly
// what was prepared as synced (an append in between stays unsynced); with
// a failed SyncFS, Complete fsyncs the log's files itself.
func TestSyncPoint(t *testing.T) {
	for _, fsErr := range []error{nil, errors.New("syncfs failed")} {
		var fsyncs atomic.Int32
		l := openLog(t, t.TempDir(), Options{Fsync: func(f *os.File) error { fsyncs.Add(1); return f.Sync() }})
		rng := rand.New(rand.NewPCG(5, 5))
		appendAll(t, l, variedBatches(t, rng, 5))
		sp, err := l.PrepareSync()
		if err != nil {
			t.Fatal(err)
		}
		end := l.LogEndOffset()
		appendAll(t, l, variedBatches(t, rng, 2)) // appends go on meanwhile
		if err := SyncFS(l.Dir()); err != nil && fsErr == nil {
			t.Fatal(err)
		}
		if err := sp.Complete(fsErr); err != nil {
			t.Fatal(err)
		}
		if l.SyncedOffset() != end || l.DurableOffset() != end || !l.Dirty() {
			t.Fatalf("after complete: synced %d durable %d, want %d and the later appends dirty", l.SyncedOffset(), l.DurableOffset(), end)
		}
		if got := fsyncs.Load(); (got > 0) != (fsErr != nil) {
			t.Fatalf("fsErr %v: %d fsyncs", fsErr, got)
		}
		if _, err := l.Sync(); err != nil || l.SyncedOffset() != l.LogEndOffset() {
			t.Fatalf("sync after the sync point: %v", err)
		}
		_ = l.Close()
	}
}

// TestCloseBatch: logs closed into a batch are trusted at the next open
// once it is committed; a crash before the commit leaves no marker (and
// perhaps ".tmp" index files, which Open removes), and the logs are
// validated.
func TestCloseBatch(t *testing.T) {
	for _, commit := range []bool{true, false} {
		root := t.TempDir()
		b := NewCloseBatch(root)
		var wants [][]appended
		for i := range 3 {
			dir := filepath.Join(root, fmt.Sprint(i))
			l := openLog(t, dir, Options{SegmentBytes: 4 << 10})
			wants = append(wants, appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(uint64(i), 6)), 12)))
			if err := l.CloseIn(b); err != nil {
				t.Fatal(err)
			}
		}
		if commit {
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		for i, want := range wants {
			dir := filepath.Join(root, fmt.Sprint(i))
			if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); commit && len(m) > 0 {
				t.Fatalf("committed: tmp files %v", m)
			}
			if _, err := os.Stat(filepath.Join(dir, cleanMarkerName)); commit != (err == nil) {
				t.Fatalf("commit %v: marker: %v", commit, err)
			}
			segs := segmentFiles(t, dir, logSuffix)
			last, _ := parseSegmentName(filepath.Base(segs[len(segs)-1]), logSuffix)
			corruptLastByte(t, dir, last)
			l := openLog(t, dir, Options{SegmentBytes: 4 << 10})
			end, cut := want[len(want)-1].next, want[len(want)-1].base
			if commit && l.LogEndOffset() != end {
				t.Fatalf("committed: end %d, want %d (trusted)", l.LogEndOffset(), end)
			}
			if !commit && l.LogEndOffset() != cut {
				t.Fatalf("not committed: end %d, want %d (validated)", l.LogEndOffset(), cut)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) > 0 {
				t.Fatalf("tmp files after open: %v", m)
			}
			_ = l.Close()
		}
	}
}

// TestAppendLeavesMarker: the first append after a clean open does not
// touch the disk (no unlink of the marker); a kill then finds the tail
// longer than the marker says and validates it (nothing acknowledged is
// lost, nothing stale is trusted), a sync leaves the stale marker too (the
// same holds after it), and a clean close or checkpoint overwrites it in
// place (the same inode) with one that carries the tail's index.
func TestAppendLeavesMarker(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	marker := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, cleanMarkerName))
		return err == nil
	}
	opts := Options{IndexIntervalBytes: 64} // every batch indexed
	for _, step := range []string{"kill", "sync", "close", "checkpoint"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, opts)
			want := appendAll(t, l, variedBatches(t, rng, 10))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			ino := inode(t, filepath.Join(dir, cleanMarkerName))
			l = openLog(t, dir, opts)
			want = append(want, appendAll(t, l, variedBatches(t, rng, 3))...)
			if l.Marked() {
				t.Fatal("marked after an append")
			}
			if !marker(dir) {
				t.Fatal("the append removed the marker (an unlink on the produce path)")
			}
			switch step {
			case "kill":
				l.crash() // the appended batches reach the file, as after a WAL round
				l = openLog(t, dir, opts)
				checkLog(t, l, want)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			case "sync":
				if _, err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				if !marker(dir) {
					t.Fatal("Sync removed the stale marker (a new file at the next close)")
				}
				// Stale: corrupting the tail after a kill must cut it
				// (validated, not trusted).
				l.crash()
				corruptLastByte(t, dir, 0)
				l = openLog(t, dir, opts)
				checkLog(t, l, want[:len(want)-1])
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return
			case "close":
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			case "checkpoint":
				if err := l.Checkpoint(); err != nil {
					t.Fatal(err)
				}
				if !l.Marked() {
					t.Fatal("not marked after Checkpoint")
				}
				l.crash()
			}
			// A new marker describes the whole log: trusted (a corrupt
			// last byte is not noticed), and its index covers every batch.
			if !marker(dir) {
				t.Fatal("no marker after a clean close or checkpoint")
			}
			// (After a kill, too: the open keeps a marker the tail grew
			// past, as stale.)
			if got := inode(t, filepath.Join(dir, cleanMarkerName)); got != ino {
				t.Fatalf("marker inode %d, was %d: rewritten as a new file, not in place", got, ino)
			}
			for _, suf := range []string{indexSuffix, timeIndexSuffix} {
				if _, err := os.Stat(filepath.Join(dir, segmentName(0, suf))); !os.IsNotExist(err) {
					t.Fatalf("the tail has a %s file (%v): its index is in the marker", suf, err)
				}
			}
			l = openLog(t, dir, opts)
			defer l.Close()
			if !l.Marked() {
				t.Fatal("reopened unmarked")
			}
			checkLog(t, l, want)
			raw, err := os.ReadFile(filepath.Join(dir, cleanMarkerName))
			if err != nil {
				t.Fatal(err)
			}
			m, ok := decodeCleanMarker(raw)
			if !ok || !m.withIndex || len(m.idx) == 0 || int64(m.idx[len(m.idx)-1].rel) != want[len(want)-1].base {
				t.Fatalf("the marker's index (ok %v) does not index the last batch %d: %+v", ok, want[len(want)-1].base, m)
			}
		})
	}
}

// TestCheckpointIn: a batch checkpoint leaves the log as Checkpoint does
// (trusted after a kill) when nothing was appended before done; an append
// in between leaves it unmarked with the new marker stale (the kill then
// validates the tail, losing nothing); a failed Commit marks nothing.
func TestCheckpointIn(t *testing.T) {
	for _, c := range []string{"idle", "append between", "commit failed"} {
		t.Run(c, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(6, 6))
			l := openLog(t, dir, Options{})
			want := appendAll(t, l, variedBatches(t, rng, 10))
			b := NewCloseBatch(dir)
			done, err := l.CheckpointIn(b)
			if err != nil || done == nil {
				t.Fatalf("CheckpointIn: %v (done %v)", err, done != nil)
			}
			if c == "append between" {
				want = append(want, appendAll(t, l, variedBatches(t, rng, 2))...)
			}
			commitErr := b.Commit()
			if c == "commit failed" {
				commitErr = errors.New("syncfs: EIO")
			}
			if commitErr != nil && c != "commit failed" {
				t.Fatal(commitErr)
			}
			done(commitErr)
			switch c {
			case "idle":
				if !l.Marked() || l.Dirty() || l.SyncedOffset() != l.LogEndOffset() {
					t.Fatalf("after the batch: marked %v dirty %v synced %d end %d", l.Marked(), l.Dirty(), l.SyncedOffset(), l.LogEndOffset())
				}
				if d, err := l.CheckpointIn(NewCloseBatch(dir)); err != nil || d != nil {
					t.Fatalf("a marked log checkpointed again: %v", err)
				}
			case "append between":
				if l.Marked() || !l.staleMarker {
					t.Fatalf("marked %v stale %v after an append during the batch", l.Marked(), l.staleMarker)
				}
			case "commit failed":
				if l.Marked() || l.SyncedOffset() == l.LogEndOffset() || !l.staleMarker {
					t.Fatalf("a failed batch: marked %v, synced %d, stale marker %v", l.Marked(), l.SyncedOffset(), l.staleMarker)
				}
			}
			l.crash()
			if c == "idle" {
				corruptLastByte(t, dir, 0) // trusted: not noticed
			}
			l = openLog(t, dir, Options{})
			defer l.Close()
			if c == "idle" {
				if l.LogEndOffset() != want[len(want)-1].next || !l.Marked() {
					t.Fatalf("after the batch and a kill: end %d marked %v, want trusted at %d", l.LogEndOffset(), l.Marked(), want[len(want)-1].next)
				}
				return
			}
			checkLog(t, l, want)
		})
	}
}

// TestMarkerRandomOps runs random sequences of appends, syncs, recovery
// points (one by one and batched), truncations, rolls, clean closes and
// kills (page cache kept) over small segments, reopening after each close
// or kill: the log must then hold exactly what was appended and not cut,
// whatever markers and index files the operations left on disk (a stale
// marker must never be trusted for a tail it does not describe).
func TestMarkerRandomOps(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 77))
		dir := t.TempDir()
		opts := Options{SegmentBytes: 2048, IndexIntervalBytes: 256}
		l := openLog(t, dir, opts)
		var want []appended
		for step := range 120 {
			switch op := rng.IntN(10); {
			case op < 4:
				want = append(want, appendAll(t, l, variedBatches(t, rng, 1+rng.IntN(3)))...)
			case op == 4:
				if _, err := l.Sync(); err != nil {
					t.Fatalf("seed %d step %d: sync: %v", seed, step, err)
				}
			case op == 5:
				if err := l.Checkpoint(); err != nil {
					t.Fatalf("seed %d step %d: checkpoint: %v", seed, step, err)
				}
			case op == 6:
				b := NewCloseBatch(dir)
				done, err := l.CheckpointIn(b)
				if err != nil {
					t.Fatalf("seed %d step %d: CheckpointIn: %v", seed, step, err)
				}
				if rng.IntN(2) == 0 { // an append between capture and commit
					want = append(want, appendAll(t, l, variedBatches(t, rng, 1))...)
				}
				err = b.Commit()
				if done != nil {
					done(err)
				}
			case op == 7 && len(want) > 1:
				i := 1 + rng.IntN(len(want)-1)
				if err := l.Truncate(want[i].base); err != nil {
					t.Fatalf("seed %d step %d: truncate: %v", seed, step, err)
				}
				want = want[:i]
			case op == 8:
				l = reopenChecked(t, l, dir, opts, want, false)
			case op == 9:
				l = reopenChecked(t, l, dir, opts, want, true)
			}
		}
		reopenChecked(t, l, dir, opts, want, false).Close()
	}
}

// inode returns path's inode number.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestMarkerFormat1: a log closed by an older broker (a format-1 marker
// and the tail's index files) is trusted as it was; its first close after
// a change writes format 2 over it, in place, and is trusted the same way;
// a marker torn by a crash while being overwritten is not trusted.
func TestMarkerFormat1(t *testing.T) {
	dir := t.TempDir()
	opts := Options{IndexIntervalBytes: 64}
	rng := rand.New(rand.NewPCG(8, 8))
	l := openLog(t, dir, opts)
	want := appendAll(t, l, variedBatches(t, rng, 8))
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	// What an older broker's Close left.
	active := l.active
	if err := active.persistIndexes(); err != nil {
		t.Fatal(err)
	}
	size, end := active.size.Load(), l.LogEndOffset()
	l.crash()
	markerPath := filepath.Join(dir, cleanMarkerName)
	if err := os.WriteFile(markerPath, cleanMarkerV1Bytes(0, size, end), 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, opts)
	if !l.Marked() {
		t.Fatal("format-1 marker not trusted")
	}
	checkLog(t, l, want)
	want = append(want, appendAll(t, l, variedBatches(t, rng, 3))...)
	ino := inode(t, markerPath)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(markerPath)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := decodeCleanMarker(raw); !ok || !m.withIndex || inode(t, markerPath) != ino {
		t.Fatalf("after a close: format 2 %v, ok %v, same inode %v", m.withIndex, ok, inode(t, markerPath) == ino)
	}
	l = openLog(t, dir, opts)
	if !l.Marked() {
		t.Fatal("format-2 marker not trusted")
	}
	checkLog(t, l, want)
	l.crash()

	// Torn: a flipped byte, old bytes beyond the new end, a flipped
	// bit in the header. The tail is then validated, so the corrupt last
	// byte is found and its batch cut.
	for _, tear := range []func([]byte) []byte{
		func(b []byte) []byte { return append(b[:len(b)-1:len(b)-1], b[len(b)-1]^1) },
		func(b []byte) []byte { return append(bytes.Clone(b), 0, 0, 0, 0) },
		func(b []byte) []byte { c := bytes.Clone(b); c[20] ^= 0x40; return c },
	} {
		corruptLastByte(t, dir, 0)
		if err := os.WriteFile(markerPath, tear(raw), 0o644); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, dir, opts)
		if l.Marked() {
			t.Fatal("torn marker trusted")
		}
		checkLog(t, l, want[:len(want)-1])
		want = want[:len(want)-1]
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if raw, err = os.ReadFile(markerPath); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCreateFirstSegmentMarker: a log created by CreateFirstSegment has an
// empty marker file, which its open keeps (it is not a marker: the log is
// new, not trusted) and its first close overwrites in place.
func TestCreateFirstSegmentMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CreateFirstSegment(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, cleanMarkerName)
	ino := inode(t, path)
	l := openLog(t, dir, Options{})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("open removed the empty marker file: %v", err)
	}
	want := appendAll(t, l, variedBatches(t, rand.New(rand.NewPCG(3, 3)), 4))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := inode(t, path); got != ino {
		t.Fatalf("marker inode %d, was %d: the first close created a file", got, ino)
	}
	l = openLog(t, dir, Options{})
	defer l.Close()
	if !l.Marked() {
		t.Fatal("not trusted after the first close")
	}
	checkLog(t, l, want)
}
