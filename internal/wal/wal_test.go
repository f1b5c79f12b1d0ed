package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

type rec struct {
	key  Key
	data []byte
}

func key(b byte, p int32) Key {
	var k Key
	for i := range k.TopicID {
		k.TopicID[i] = b
	}
	k.Partition = p
	return k
}

// payload is a recognisable, size-controlled stand-in for encoded batches
// (the WAL does not parse what it stores).
func payload(tag string, n int) []byte {
	b := bytes.Repeat([]byte{'.'}, n)
	copy(b, tag)
	return b
}

func openT(t testing.TB, dir string) *WAL {
	t.Helper()
	w, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func replayAll(t testing.TB, w *WAL) []rec {
	t.Helper()
	var out []rec
	if err := w.Replay(func(k Key, b []byte) error {
		out = append(out, rec{k, bytes.Clone(b)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func commitAll(t testing.TB, w *WAL, rs ...rec) {
	t.Helper()
	for _, r := range rs {
		w.Append(r.key, r.data)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func same(t testing.TB, what string, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].key != want[i].key || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("%s: record %d = {%v %q}, want {%v %q}", what, i, got[i].key, got[i].data, want[i].key, want[i].data)
		}
	}
}

func recordSize(r rec) int64 { return int64(headerSize + len(r.data)) }

func TestRoundTrip(t *testing.T) {
	w := openT(t, t.TempDir())
	a := []rec{{key(1, 0), payload("a0", 100)}, {key(1, 1), payload("a1", 7)}, {key(2, 0), payload("a2", 3000)}}
	b := []rec{{key(1, 0), payload("b0", 1)}, {key(3, -1), payload("b1", 64)}}
	commitAll(t, w, a...)
	commitAll(t, w, b...)
	want := append(append([]rec{}, a...), b...)
	same(t, "replay", replayAll(t, w), want)
	var size int64
	for _, r := range want {
		size += recordSize(r)
	}
	if w.Size() != size {
		t.Errorf("Size = %d, want %d", w.Size(), size)
	}
	if w.Pending() != 0 {
		t.Errorf("Pending after Commit = %d", w.Pending())
	}
}

func TestEmptyCommitIsNoop(t *testing.T) {
	w := openT(t, t.TempDir())
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("Size = %d", w.Size())
	}
}

func TestDiscard(t *testing.T) {
	w := openT(t, t.TempDir())
	w.Append(key(1, 0), payload("x", 10))
	w.Discard()
	commitAll(t, w, rec{key(1, 1), payload("y", 10)})
	same(t, "replay", replayAll(t, w), []rec{{key(1, 1), payload("y", 10)}})
}

func TestResetEmptiesReplay(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	commitAll(t, w, rec{key(1, 0), payload("a", 50)}, rec{key(1, 1), payload("b", 50)})
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, w); len(got) != 0 {
		t.Fatalf("replay after Reset: %d records", len(got))
	}
	if w.Size() != 0 {
		t.Fatalf("Size after Reset = %d", w.Size())
	}
	// And from disk, through a new handle.
	w.Close()
	w2 := openT(t, dir)
	if got := replayAll(t, w2); len(got) != 0 {
		t.Fatalf("replay after Reset and reopen: %d records", len(got))
	}
}

// longThenShort writes a long pass, resets, writes a shorter pass of records
// the same size (so the short pass ends exactly on an old record boundary,
// the hardest case) and returns the short pass.
func longThenShort(t *testing.T, w *WAL) []rec {
	t.Helper()
	for i := range 8 {
		commitAll(t, w, rec{key(9, int32(i)), payload(fmt.Sprintf("old%d", i), 200)})
	}
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	short := []rec{{key(1, 0), payload("new0", 200)}, {key(1, 1), payload("new1", 200)}}
	commitAll(t, w, short...)
	return short
}

func TestResetThenShorterPass(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	short := longThenShort(t, w)
	st, _ := os.Stat(filepath.Join(dir, fileName))
	if st.Size() <= w.Size() {
		t.Fatalf("file %d bytes, want old records after the new pass (%d)", st.Size(), w.Size())
	}
	same(t, "replay", replayAll(t, w), short)
	w.Close()
	same(t, "replay after reopen", replayAll(t, openT(t, dir)), short)
}

// A generation must never repeat across restarts: a reset leaves zeros at
// offset 0, and a new pass after reopen must not line up with old records
// of "its" generation.
func TestGenerationUniqueAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	if err := w.Reset(); err != nil { // as the server does after replay
		t.Fatal(err)
	}
	for i := range 8 {
		commitAll(t, w, rec{key(9, int32(i)), payload(fmt.Sprintf("old%d", i), 200)})
	}
	if err := w.Reset(); err != nil { // clean shutdown
		t.Fatal(err)
	}
	w.Close()
	for run := range 3 {
		w = openT(t, dir)
		if got := replayAll(t, w); len(got) != 0 {
			t.Fatalf("run %d: replay at start: %d records", run, len(got))
		}
		if err := w.Reset(); err != nil {
			t.Fatal(err)
		}
		r := rec{key(1, int32(run)), payload(fmt.Sprintf("run%d", run), 200)}
		commitAll(t, w, r)
		same(t, fmt.Sprintf("run %d", run), replayAll(t, w), []rec{r})
		// Crash: no Reset; reopen and replay, then reset like the server.
		w.Close()
		w = openT(t, dir)
		same(t, fmt.Sprintf("run %d after crash", run), replayAll(t, w), []rec{r})
		if err := w.Reset(); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	rs := []rec{{key(1, 0), payload("a", 100)}, {key(1, 1), payload("b", 100)}, {key(1, 2), payload("c", 100)}}
	commitAll(t, w, rs...)
	w.Close()
	path := filepath.Join(dir, fileName)
	full := recordSize(rs[0]) + recordSize(rs[1])
	for _, cut := range []int64{full + 1, full + 4, full + headerSize, full + recordSize(rs[2]) - 1} {
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		w := openT(t, dir)
		same(t, fmt.Sprintf("cut at %d", cut), replayAll(t, w), rs[:2])
		w.Close()
	}
}

func TestCRCCorruption(t *testing.T) {
	rs := []rec{{key(1, 0), payload("a", 100)}, {key(1, 1), payload("b", 100)}, {key(1, 2), payload("c", 100)}}
	second := recordSize(rs[0])
	// Flip a byte in each part of the second record: CRC, generation, key,
	// partition, payload. Everything from there on must be dropped.
	for _, pos := range []int64{4, prefixSize, prefixSize + 8, prefixSize + 24, headerSize + 50} {
		dir := t.TempDir()
		w := openT(t, dir)
		commitAll(t, w, rs...)
		w.Close()
		path := filepath.Join(dir, fileName)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw[second+pos] ^= 0x40
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("flip at +%d", pos), replayAll(t, openT(t, dir)), rs[:1])
	}
}

func TestBadLengthStops(t *testing.T) {
	for _, n := range []uint32{1, headerSize - prefixSize - 1, maxRecord + 1, 1 << 31} {
		dir := t.TempDir()
		w := openT(t, dir)
		rs := []rec{{key(1, 0), payload("a", 10)}, {key(1, 1), payload("b", 10)}}
		commitAll(t, w, rs...)
		w.Close()
		path := filepath.Join(dir, fileName)
		raw, _ := os.ReadFile(path)
		binary.BigEndian.PutUint32(raw[recordSize(rs[0]):], n)
		os.WriteFile(path, raw, 0o644)
		same(t, fmt.Sprintf("length %d", n), replayAll(t, openT(t, dir)), rs[:1])
	}
}

func TestGarbageAndZeroFiles(t *testing.T) {
	for name, content := range map[string][]byte{
		"zeros":   make([]byte, 64<<10),
		"garbage": bytes.Repeat([]byte("not a wal record, just junk. "), 3000),
		"ones":    bytes.Repeat([]byte{0xff}, 4096),
		"short":   {0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, fileName), content, 0o644); err != nil {
				t.Fatal(err)
			}
			w := openT(t, dir)
			if got := replayAll(t, w); len(got) != 0 {
				t.Fatalf("replayed %d records from %s", len(got), name)
			}
			if err := w.Reset(); err != nil {
				t.Fatal(err)
			}
			r := rec{key(4, 2), payload("fresh", 77)}
			commitAll(t, w, r)
			same(t, "after reset", replayAll(t, w), []rec{r})
			w.Close()
			same(t, "after reopen", replayAll(t, openT(t, dir)), []rec{r})
		})
	}
}

func TestOpenExistingReplays(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	rs := []rec{{key(1, 0), payload("a", 10)}, {key(2, 5), payload("b", 1000)}}
	commitAll(t, w, rs...)
	w.Close()
	w = openT(t, dir)
	same(t, "reopen", replayAll(t, w), rs)
	// Replay is repeatable (New may fail and the next start replays again).
	same(t, "second replay", replayAll(t, w), rs)
}

// A Commit on a reopened file before Reset would land after records that
// end the replay (older passes), so it must be refused, not acknowledged.
func TestCommitBeforeResetRefused(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	short := longThenShort(t, w)
	w.Close()
	w = openT(t, dir)
	w.Append(key(7, 7), payload("late", 10))
	if err := w.Commit(); !errors.Is(err, ErrNotReset) {
		t.Fatalf("Commit before Reset = %v, want ErrNotReset", err)
	}
	if w.Failed() {
		t.Fatal("ErrNotReset must not fail the WAL")
	}
	w.Discard()
	same(t, "replay", replayAll(t, w), short)
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	r := rec{key(7, 7), payload("late", 10)}
	commitAll(t, w, r)
	same(t, "after reset", replayAll(t, w), []rec{r})
}

func TestReplayCallbackError(t *testing.T) {
	w := openT(t, t.TempDir())
	commitAll(t, w, rec{key(1, 0), payload("a", 1)}, rec{key(1, 1), payload("b", 1)})
	boom := errors.New("boom")
	calls := 0
	err := w.Replay(func(Key, []byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Replay = %v after %d calls, want boom after 1", err, calls)
	}
}

func TestCommitFailureIsFinal(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir)
	good := rec{key(1, 0), payload("good", 10)}
	commitAll(t, w, good)
	size := w.Size()
	w.f.Close() // every later write fails
	w.Append(key(1, 1), payload("lost", 10))
	if err := w.Commit(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit on a closed file = %v, want ErrFailed", err)
	}
	if !w.Failed() {
		t.Fatal("Failed() = false after a failed Commit")
	}
	if w.Size() != size {
		t.Fatalf("Size moved to %d after a failed Commit (was %d)", w.Size(), size)
	}
	// Stays failed: nothing is written or claimed durable any more.
	w.Discard()
	w.Append(key(1, 2), payload("later", 10))
	if err := w.Commit(); !errors.Is(err, ErrFailed) {
		t.Fatalf("second Commit = %v, want ErrFailed", err)
	}
	if err := w.Reset(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Reset = %v, want ErrFailed", err)
	}
	// What was committed before the failure is still there for the next start.
	same(t, "replay after failure", replayAll(t, openT(t, dir)), []rec{good})
}

func FuzzReplay(f *testing.F) {
	dir := f.TempDir()
	w, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	w.Append(key(1, 0), payload("seed", 40))
	w.Append(key(2, 3), payload("x", 1))
	if err := w.Commit(); err != nil {
		f.Fatal(err)
	}
	valid, _ := os.ReadFile(filepath.Join(dir, fileName))
	w.Close()
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), valid...))
	f.Add(make([]byte, 100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0x0f, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var total int
		err = w.Replay(func(k Key, b []byte) error {
			if len(b) > maxRecord || len(b) > len(raw) {
				t.Fatalf("record of %d bytes from a %d-byte file", len(b), len(raw))
			}
			total += headerSize + len(b)
			return nil
		})
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		if total > len(raw) {
			t.Fatalf("replayed %d bytes from a %d-byte file", total, len(raw))
		}
		// Whatever the file held, a reset WAL is usable.
		if err := w.Reset(); err != nil {
			t.Fatal(err)
		}
		w.Append(key(5, 5), []byte("after"))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		n := 0
		w.Replay(func(k Key, b []byte) error {
			if k != key(5, 5) || string(b) != "after" {
				t.Fatalf("replay after reset: %v %q", k, b)
			}
			n++
			return nil
		})
		if n != 1 {
			t.Fatalf("replay after reset: %d records", n)
		}
	})
}
