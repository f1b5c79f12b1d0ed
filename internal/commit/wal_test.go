package commit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/wal"
)

// walLog is an in-memory WALLog: each appended chunk spans one offset.
// durable and synced follow the storage.Log rules (synced <= durable <= end).
type walLog struct {
	key wal.Key

	mu       sync.Mutex
	chunks   [][]byte
	durable  int64
	synced   int64
	syncErr  error
	unsynErr error
	onSync   func() // called at the start of every Sync, without mu

	syncs atomic.Int64
}

func newWALLog(b byte, p int32) *walLog {
	l := &walLog{}
	for i := range l.key.TopicID {
		l.key.TopicID[i] = b
	}
	l.key.Partition = p
	return l
}

func (l *walLog) append(data string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.chunks = append(l.chunks, []byte(data))
	return int64(len(l.chunks))
}

func (l *walLog) Sync() (int64, error) {
	l.syncs.Add(1)
	if l.onSync != nil {
		l.onSync()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.syncErr != nil {
		return l.durable, l.syncErr
	}
	l.synced = int64(len(l.chunks))
	l.durable = l.synced
	return l.durable, nil
}

func (l *walLog) WALKey() wal.Key { return l.key }

func (l *walLog) Unsynced(dst []byte) ([]byte, int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unsynErr != nil {
		return dst, l.durable, l.durable, l.unsynErr
	}
	end := int64(len(l.chunks))
	for _, c := range l.chunks[l.durable:end] {
		dst = append(dst, c...)
	}
	return dst, l.durable, end, nil
}

func (l *walLog) MarkDurable(end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if end > l.durable && end <= int64(len(l.chunks)) {
		l.durable = end
	}
}

func (l *walLog) state() (end, durable, synced int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.chunks)), l.durable, l.synced
}

// since is the data of chunks [from, end).
func (l *walLog) since(from int64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.Join(l.chunks[from:], nil))
}

type walRec struct {
	key  wal.Key
	data string
}

func openWAL(t *testing.T, dir string) *wal.WAL {
	t.Helper()
	w, err := wal.Open(dir, nil)
	if err != nil {
		t.Fatalf("wal.Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// replayDir replays the WAL file in dir through a separate handle, as the
// next start would.
func replayDir(t *testing.T, dir string) []walRec {
	t.Helper()
	w, err := wal.Open(dir, nil)
	if err != nil {
		t.Fatalf("wal.Open: %v", err)
	}
	defer w.Close()
	var out []walRec
	if err := w.Replay(func(k wal.Key, b []byte) error {
		out = append(out, walRec{k, string(b)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func wantRecs(t *testing.T, what string, got []walRec, want ...walRec) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: WAL holds %v, want %v", what, got, want)
	}
}

func TestWALRoundSkipsSync(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{WAL: openWAL(t, dir)})
	a, b := newWALLog(1, 0), newWALLog(2, 3)
	a.append("a0")
	a.append("a1")
	b.append("b0")
	ra := c.AddBytes(a, 2, 4)
	rb := c.AddBytes(b, 1, 2)
	c.Flush()
	if !isDone(ra) || !isDone(rb) {
		t.Fatal("round not done after Flush")
	}
	for _, l := range []*walLog{a, b} {
		end, durable, synced := l.state()
		if durable != end || synced != 0 {
			t.Errorf("log %v: end %d durable %d synced %d, want durable=end, synced 0", l.key, end, durable, synced)
		}
		if n := l.syncs.Load(); n != 0 {
			t.Errorf("log %v: %d Syncs in a WAL round", l.key, n)
		}
	}
	st := c.Stats()
	if st.WALRounds != 1 || st.Rounds != 1 || st.Syncs != 0 {
		t.Errorf("Stats = %+v, want 1 WAL round, 0 syncs", st)
	}
	first := []walRec{{a.key, "a0a1"}, {b.key, "b0"}}
	got := replayDir(t, dir)
	if len(got) == 2 && got[0].key == b.key { // map order of the dirty set
		got[0], got[1] = got[1], got[0]
	}
	wantRecs(t, "after round 1", got, first...)

	// The next round writes only the new tails.
	a.append("a2")
	b.append("b1")
	c.Add(a, 1)
	c.Add(b, 1)
	c.Flush()
	got = replayDir(t, dir)
	if len(got) != 4 {
		t.Fatalf("after round 2: %v", got)
	}
	if got[2].key == b.key {
		got[2], got[3] = got[3], got[2]
	}
	if got[0].key == b.key {
		got[0], got[1] = got[1], got[0]
	}
	wantRecs(t, "after round 2", got, append(first, walRec{a.key, "a2"}, walRec{b.key, "b1"})...)
	if st := c.Stats(); st.WALRounds != 2 || st.Syncs != 0 {
		t.Errorf("Stats = %+v, want 2 WAL rounds, 0 syncs", st)
	}
}

func TestWALNotUsed(t *testing.T) {
	cases := []struct {
		name  string
		logs  int
		bytes int64
	}{
		{"single log", 1, 10},
		{"round above WALMaxRoundBytes", 2, 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWAL(t, dir)
			c := New(Options{WAL: w, WALMaxRoundBytes: 100})
			var logs []*walLog
			for i := range tc.logs {
				l := newWALLog(byte(i+1), 0)
				l.append("x")
				logs = append(logs, l)
				n := int64(0)
				if i == 0 {
					n = tc.bytes
				}
				c.AddBytes(l, 1, n)
			}
			c.Flush()
			for _, l := range logs {
				end, durable, synced := l.state()
				if l.syncs.Load() != 1 || durable != end || synced != end {
					t.Errorf("log %v: %d syncs, end %d durable %d synced %d; want 1 sync, all synced", l.key, l.syncs.Load(), end, durable, synced)
				}
			}
			if st := c.Stats(); st.WALRounds != 0 || st.Syncs != int64(tc.logs) {
				t.Errorf("Stats = %+v, want no WAL round, %d syncs", st, tc.logs)
			}
			if w.Size() != 0 || len(replayDir(t, dir)) != 0 {
				t.Errorf("WAL written: size %d", w.Size())
			}
		})
	}
}

// plainLog is a Log that cannot go through the WAL.
type plainLog struct{ syncs atomic.Int64 }

func (p *plainLog) Sync() (int64, error) { p.syncs.Add(1); return 0, nil }

func TestWALFallbackWhenALogCannotUseIt(t *testing.T) {
	for _, mode := range []string{"not a WALLog", "Unsynced fails"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			w := openWAL(t, dir)
			c := New(Options{WAL: w})
			a, b := newWALLog(1, 0), newWALLog(2, 0)
			a.append("a")
			b.append("b")
			c.Add(a, 1)
			c.Add(b, 1)
			var p *plainLog
			if mode == "not a WALLog" {
				p = &plainLog{}
				c.Add(p, 1)
			} else {
				b.unsynErr = errors.New("read failed")
			}
			c.Flush()
			for _, l := range []*walLog{a, b} {
				if l.syncs.Load() != 1 {
					t.Errorf("log %v: %d syncs, want 1 (direct fallback)", l.key, l.syncs.Load())
				}
			}
			if p != nil && p.syncs.Load() != 1 {
				t.Errorf("plain log: %d syncs, want 1", p.syncs.Load())
			}
			if st := c.Stats(); st.WALRounds != 0 {
				t.Errorf("WALRounds = %d, want 0", st.WALRounds)
			}
			if w.Pending() != 0 || w.Size() != 0 || len(replayDir(t, dir)) != 0 {
				t.Errorf("WAL written or left pending (pending %d, size %d)", w.Pending(), w.Size())
			}
		})
	}
}

// A WAL whose writes fail: wal.log is /dev/full, so every write returns
// ENOSPC. Rounds must fall back to fsyncing the logs, and the producers
// waiting on them see their data durable.
func TestWALFailureFallsBackToSync(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, "wal.log")); err != nil {
		t.Fatal(err)
	}
	w := openWAL(t, dir)
	c := New(Options{WAL: w})
	logs := []*walLog{newWALLog(1, 0), newWALLog(1, 1), newWALLog(1, 2)}
	for round := range 3 {
		var rounds []*Round
		var ends []int64
		for _, l := range logs {
			ends = append(ends, l.append(fmt.Sprintf("r%d", round)))
			rounds = append(rounds, c.Add(l, 1))
		}
		// One round covering all three logs (a running committer could
		// cut a round per Add, and a round of one log never uses the WAL).
		c.Flush()
		for i, r := range rounds {
			waitDone(t, r, "round")
			if _, durable, synced := logs[i].state(); durable < ends[i] || synced < ends[i] {
				t.Fatalf("round %d log %d: durable %d synced %d after Done, want >= %d", round, i, durable, synced, ends[i])
			}
		}
	}
	if !w.Failed() {
		t.Fatal("WAL on /dev/full did not fail")
	}
	if st := c.Stats(); st.WALRounds != 0 || st.SyncFailures != 0 {
		t.Errorf("Stats = %+v, want no WAL round, no sync failure", st)
	}
}

// Many producers on many logs with the WAL: every waiter sees its append
// durable when its round is done (run with -race).
func TestWALRoundsConcurrentWaiters(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{WAL: openWAL(t, dir), WALCheckpointBytes: 4 << 10})
	logs := make([]*walLog, 6)
	for i := range logs {
		logs[i] = newWALLog(7, int32(i))
	}
	var wg, first sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 24 {
		wg.Add(1)
		first.Add(1)
		go func() {
			defer wg.Done()
			l := logs[g%len(logs)]
			for i := range 50 {
				end := l.append(fmt.Sprintf("g%d-%d;", g, i))
				r := c.AddBytes(l, 1, 8)
				if i == 0 {
					first.Done()
				}
				<-r.Done()
				if _, durable, _ := l.state(); durable < end {
					errs <- fmt.Errorf("log %d: durable %d < %d after Done", g%len(logs), durable, end)
					return
				}
			}
		}()
	}
	// The committer starts once every goroutine's first batch is waiting,
	// so at least the first round spans all six logs and goes through the
	// WAL; later rounds race as they will.
	first.Wait()
	runCommitter(t, c)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := c.Stats(); st.WALRounds == 0 {
		t.Errorf("no WAL round among %d rounds", st.Rounds)
	}
}

func TestWALCheckpoint(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir)
	c := New(Options{WAL: w, WALCheckpointBytes: 1})
	logs := []*walLog{newWALLog(1, 0), newWALLog(1, 1), newWALLog(2, 0)}
	var syncedBeforeReset atomic.Int64
	for _, l := range logs {
		l.append("data-" + fmt.Sprint(l.key.Partition))
		// When a covered log is fsynced at the checkpoint, the WAL must
		// still hold the data (the reset comes after every sync).
		l.onSync = func() {
			if len(replayDir(t, dir)) == len(logs) {
				syncedBeforeReset.Add(1)
			}
		}
		c.Add(l, 1)
	}
	c.Flush()
	if st := c.Stats(); st.WALRounds != 1 {
		t.Fatalf("WALRounds = %d, want 1", st.WALRounds)
	}
	for _, l := range logs {
		end, durable, synced := l.state()
		if l.syncs.Load() != 1 || synced != end || durable != end {
			t.Errorf("log %v after checkpoint: %d syncs, end %d durable %d synced %d", l.key, l.syncs.Load(), end, durable, synced)
		}
	}
	if n := syncedBeforeReset.Load(); n != int64(len(logs)) {
		t.Errorf("%d of %d checkpoint syncs saw the WAL intact", n, len(logs))
	}
	if w.Size() != 0 {
		t.Errorf("WAL size %d after checkpoint", w.Size())
	}
	wantRecs(t, "after checkpoint", replayDir(t, dir))

	// The next checkpoint covers only logs written through the WAL since.
	for _, l := range logs {
		l.onSync = nil
	}
	logs[0].append("x")
	logs[1].append("y")
	c.Add(logs[0], 1)
	c.Add(logs[1], 1)
	c.Flush()
	if got := []int64{logs[0].syncs.Load(), logs[1].syncs.Load(), logs[2].syncs.Load()}; fmt.Sprint(got) != "[2 2 1]" {
		t.Errorf("syncs after second checkpoint = %v, want [2 2 1]", got)
	}
	wantRecs(t, "after second checkpoint", replayDir(t, dir))
}

func TestCheckpointKeepsWALWhenALogFailsToSync(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir)
	c := New(Options{WAL: w, WALCheckpointBytes: 1})
	a, b := newWALLog(1, 0), newWALLog(1, 1)
	a.append("a0")
	b.append("b0")
	b.syncErr = errors.New("fsync: EIO")
	c.Add(a, 1)
	c.Add(b, 1)
	c.Flush()
	if a.syncs.Load() != 1 || b.syncs.Load() != 1 {
		t.Fatalf("checkpoint syncs: a %d b %d, want 1 each", a.syncs.Load(), b.syncs.Load())
	}
	got := replayDir(t, dir)
	if len(got) != 2 {
		t.Fatalf("WAL after failed checkpoint holds %v, want both records", got)
	}
	found := false
	for _, r := range got {
		found = found || (r.key == b.key && r.data == "b0")
	}
	if !found {
		t.Fatalf("WAL lost the failed log's data: %v", got)
	}
	size := w.Size()

	// While the checkpoint is held, rounds must not grow the WAL further.
	b2 := newWALLog(2, 0)
	roundOfTwo(c, a, "a1", b2, "c0")
	if st := c.Stats(); st.WALRounds != 1 {
		t.Errorf("WALRounds = %d with a held checkpoint, want 1", st.WALRounds)
	}
	if w.Size() != size {
		t.Errorf("WAL grew from %d to %d while the checkpoint was held", size, w.Size())
	}
	if _, durable, synced := b2.state(); durable != 1 || synced != 1 {
		t.Errorf("direct fallback: durable %d synced %d", durable, synced)
	}
	if len(replayDir(t, dir)) != 2 {
		t.Error("WAL changed while the checkpoint was held")
	}
}

// twoPhaseLog is a walLog whose checkpoint sync can go through SyncFS.
type twoPhaseLog struct {
	*walLog
	completes []error // the fsErr each complete got
}

func (l *twoPhaseLog) PrepareSync() (func(error) error, error) {
	l.mu.Lock()
	end := int64(len(l.chunks))
	l.mu.Unlock()
	return func(fsErr error) error {
		l.completes = append(l.completes, fsErr)
		if fsErr != nil {
			_, err := l.Sync() // the fallback: its own fsync
			return err
		}
		l.mu.Lock()
		l.synced, l.durable = end, max(l.durable, end)
		l.mu.Unlock()
		return nil
	}, nil
}

// TestCheckpointBySyncFS: a checkpoint covering many logs makes them
// durable with one SyncFS and no fsync of their own; when SyncFS fails,
// each log is fsynced, and the WAL is reset only if all of them were.
func TestCheckpointBySyncFS(t *testing.T) {
	for _, fsFails := range []bool{false, true} {
		dir := t.TempDir()
		var syncFS atomic.Int64
		c := New(Options{WAL: openWAL(t, dir), SyncFS: func() error {
			syncFS.Add(1)
			if fsFails {
				return errors.New("syncfs: injected")
			}
			return nil
		}})
		logs := make([]*twoPhaseLog, syncFSMinLogs)
		for i := range logs {
			logs[i] = &twoPhaseLog{walLog: newWALLog(byte(i+1), int32(i))}
			logs[i].append("x")
			c.Add(logs[i], 1)
		}
		c.Flush() // one WAL round covering every log
		c.Checkpoint()
		if n := syncFS.Load(); n != 1 {
			t.Fatalf("fsFails %v: %d SyncFS calls, want 1", fsFails, n)
		}
		for i, l := range logs {
			end, durable, synced := l.state()
			if synced != end || durable != end || len(l.completes) != 1 {
				t.Fatalf("fsFails %v: log %d end %d durable %d synced %d completes %v", fsFails, i, end, durable, synced, l.completes)
			}
			if n := l.syncs.Load(); (n != 0) != fsFails {
				t.Fatalf("fsFails %v: log %d fsynced %d times", fsFails, i, n)
			}
		}
		if got := replayDir(t, dir); len(got) != 0 {
			t.Fatalf("fsFails %v: WAL not reset after the checkpoint: %d records", fsFails, len(got))
		}
	}
}

// roundOfTwo appends da to a and db to b and runs a round over both.
func roundOfTwo(c *Committer, a *walLog, da string, b *walLog, db string) {
	a.append(da)
	b.append(db)
	c.Add(a, 1)
	c.Add(b, 1)
	c.Flush()
}

// openTwoWALs opens wal.log and wal-2.log in a new directory.
func openTwoWALs(t *testing.T) (string, *wal.WAL, *wal.WAL) {
	t.Helper()
	dir := t.TempDir()
	w1 := openWAL(t, dir)
	w2, err := wal.OpenFile(dir, wal.SecondFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w2.Close() })
	return dir, w1, w2
}

// With two WAL files a checkpoint runs in the background: rounds go on in
// the other file (and are acknowledged) while the covered logs sync, the
// checkpointed file is reset only after its logs synced, and a second
// checkpoint due while the first runs waits for it rather than reuse a
// file whose logs are not yet durable.
func TestBackgroundCheckpoint(t *testing.T) {
	dir, w1, w2 := openTwoWALs(t)
	c := New(Options{WAL: w1, WAL2: w2, WALCheckpointBytes: 1})
	a, b := newWALLog(1, 0), newWALLog(1, 1)
	release := make(chan struct{})
	var blocked atomic.Bool
	a.onSync = func() {
		if blocked.CompareAndSwap(false, true) {
			<-release
		}
	}
	a.append("a0")
	b.append("b0")
	c.Add(a, 1)
	c.Add(b, 1)
	flushed := make(chan struct{})
	go func() { c.Flush(); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the round waited for its checkpoint")
	}
	if !blocked.Load() {
		// The background checkpoint may not have reached a's Sync yet.
		deadline := time.Now().Add(10 * time.Second)
		for !blocked.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if w1.Size() == 0 || len(replayDir(t, dir)) != 2 {
		t.Fatal("wal.log was reset before its logs synced")
	}

	// A round during the checkpoint goes to wal-2.log and is acknowledged.
	a.append("a1")
	b.append("b1")
	r := c.Add(a, 1)
	c.Add(b, 1)
	second := make(chan struct{})
	go func() { c.Flush(); close(second) }()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a round during the checkpoint was not acknowledged")
	}
	if st := c.Stats(); st.WALRounds != 2 {
		t.Fatalf("WALRounds = %d, want 2", st.WALRounds)
	}
	if _, durable, _ := a.state(); durable != 2 {
		t.Fatalf("a durable %d after the second round, want 2", durable)
	}
	if w2.Size() == 0 {
		t.Fatal("the second round did not use wal-2.log")
	}
	// wal-2.log is due too, but wal.log's logs are not synced: the round
	// goroutine waits instead of switching back.
	select {
	case <-second:
		t.Fatal("a second checkpoint did not wait for the first")
	case <-time.After(50 * time.Millisecond):
	}
	if w1.Size() == 0 {
		t.Fatal("wal.log reset while its checkpoint was blocked")
	}
	close(release)
	<-second
	c.Checkpoint() // waits for the background one, then nothing is left
	if w1.Size() != 0 || w2.Size() != 0 {
		t.Fatalf("WAL sizes %d/%d after the checkpoints", w1.Size(), w2.Size())
	}
	for _, l := range []*walLog{a, b} {
		if end, durable, synced := l.state(); durable != end || synced != end {
			t.Errorf("log %v: end %d durable %d synced %d", l.key, end, durable, synced)
		}
	}
}

// A log failing its background checkpoint keeps the file it was covered by,
// sends rounds to direct fsyncs and is retried by the next checkpoint, which
// then resets both files.
func TestBackgroundCheckpointFailureKeepsTheWAL(t *testing.T) {
	dir, w1, w2 := openTwoWALs(t)
	c := New(Options{WAL: w1, WAL2: w2, WALCheckpointBytes: 1})
	a, b := newWALLog(1, 0), newWALLog(1, 1)
	a.mu.Lock()
	a.syncErr = errors.New("fsync: EIO")
	a.mu.Unlock()
	roundOfTwo(c, a, "a0", b, "b0")
	c.roundMu.Lock()
	c.reapCheckpoint(true)
	held := c.walHeld
	c.roundMu.Unlock()
	if !held {
		t.Fatal("a failed background checkpoint did not hold the WAL")
	}
	if got := replayDir(t, dir); len(got) != 2 {
		t.Fatalf("wal.log after the failed checkpoint holds %v, want both records", got)
	}
	// While held, rounds go on (wal-2.log until it is full, then direct
	// fsyncs), and every checkpoint retries the failed log.
	c2 := newWALLog(2, 0)
	roundOfTwo(c, b, "b1", c2, "c0")
	if _, durable, _ := c2.state(); durable != 1 {
		t.Fatalf("a round while held: durable %d, want 1", durable)
	}
	if a.syncs.Load() < 2 || !c.walHeld || len(replayDir(t, dir)) != 2 {
		t.Fatalf("while held: a synced %d times, held %v", a.syncs.Load(), c.walHeld)
	}
	if st := c.Stats(); st.WALRounds != 2 {
		t.Fatalf("WALRounds = %d, want 2 (one before the failure, one into wal-2.log)", st.WALRounds)
	}
	// The log recovers; the next checkpoint covers it again and resets.
	a.mu.Lock()
	a.syncErr = nil
	a.mu.Unlock()
	c.Checkpoint()
	if c.walHeld || w1.Size() != 0 || w2.Size() != 0 {
		t.Fatalf("after a good checkpoint: held %v, sizes %d/%d", c.walHeld, w1.Size(), w2.Size())
	}
	if _, durable, synced := a.state(); durable != 1 || synced != 1 {
		t.Fatalf("a: durable %d synced %d after the retried checkpoint", durable, synced)
	}
}

// While a background checkpoint holds a log (between its writes and its
// syncfs), a round of that log alone goes through the WAL instead of
// fsyncing it directly, which would wait for the checkpoint.
func TestSingleLogRoundDuringBackgroundCheckpoint(t *testing.T) {
	_, w1, w2 := openTwoWALs(t)
	// The first round (two records) reaches the checkpoint size, a
	// one-record round does not.
	c := New(Options{WAL: w1, WAL2: w2, WALCheckpointBytes: 50})
	a, b := newWALLog(1, 0), newWALLog(1, 1)
	release := make(chan struct{})
	a.onSync = func() { <-release } // the checkpoint holds a until released
	roundOfTwo(c, a, "a0", b, "b0")
	c.roundMu.Lock()
	bg := c.bg != nil
	c.roundMu.Unlock()
	if !bg {
		t.Fatal("no background checkpoint after the first round")
	}
	a.append("a1")
	r := c.Add(a, 1)
	flushed := make(chan struct{})
	go func() { c.Flush(); close(flushed) }()
	defer func() {
		close(release)
		<-flushed
		c.Checkpoint() // the background checkpoint ends before the WAL closes
	}()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a one-log round waited for the background checkpoint")
	}
	if _, durable, _ := a.state(); durable != 2 {
		t.Fatalf("a durable %d, want 2", durable)
	}
}
