package commit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLog counts Syncs; each Sync optionally sleeps and optionally fails. It
// records, per Sync, when it started, so tests can order Syncs against Adds.
type fakeLog struct {
	delay time.Duration
	err   error

	syncs   atomic.Int64
	started chan struct{} // if set, receives (non-blocking) when a Sync starts

	mu       sync.Mutex
	startSeq []int64 // global sequence number at the start of each Sync
}

var seq atomic.Int64 // orders events across goroutines

func (f *fakeLog) Sync() (int64, error) {
	s := seq.Add(1)
	f.mu.Lock()
	f.startSeq = append(f.startSeq, s)
	f.mu.Unlock()
	f.syncs.Add(1)
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default:
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	return 0, f.err
}

// lastSyncStartedAfter reports whether some Sync of f started after event s.
func (f *fakeLog) syncStartedAfter(s int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.startSeq {
		if x > s {
			return true
		}
	}
	return false
}

func isDone(r *Round) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

func waitDone(t *testing.T, r *Round, what string) {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: round not done after 10s", what)
	}
}

// runCommitter starts Run and returns a stop function that cancels it and
// waits for Run to return.
func runCommitter(t *testing.T, c *Committer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestSingleAdd(t *testing.T) {
	for _, mode := range []string{"Flush", "Run"} {
		t.Run(mode, func(t *testing.T) {
			c := New(Options{})
			l := &fakeLog{}
			r := c.Add(l, 1)
			if isDone(r) {
				t.Fatal("round done before any Sync")
			}
			if mode == "Flush" {
				c.Flush()
				if !isDone(r) {
					t.Fatal("Flush returned but the round is not done")
				}
			} else {
				runCommitter(t, c)
				waitDone(t, r, "Run")
			}
			if n := l.syncs.Load(); n != 1 {
				t.Errorf("Syncs = %d, want 1", n)
			}
			st := c.Stats()
			if st.Rounds != 1 || st.Batches != 1 || st.Syncs != 1 || st.LastBatches != 1 || st.SyncFailures != 0 {
				t.Errorf("Stats = %+v, want 1 round, 1 batch, 1 sync", st)
			}
			// Nothing dirty: a Flush is a no-op and counts nothing.
			c.Flush()
			if got := c.Stats().Rounds; got != 1 {
				t.Errorf("Rounds after an empty Flush = %d, want 1", got)
			}
		})
	}
}

// TestGroupCommit: while one Sync is slow, many concurrent Adds pile into the
// next round, so all of them are covered by at most two rounds.
func TestGroupCommit(t *testing.T) {
	const adders = 200
	c := New(Options{})
	l := &fakeLog{delay: 200 * time.Millisecond, started: make(chan struct{}, 1)}
	runCommitter(t, c)

	// Start a round and wait until its Sync is in flight.
	first := c.Add(l, 1)
	select {
	case <-l.started:
	case <-time.After(10 * time.Second):
		t.Fatal("first Sync never started")
	}
	var wg sync.WaitGroup
	rounds := make([]*Round, adders)
	for i := range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rounds[i] = c.Add(l, 1)
		}()
	}
	wg.Wait()
	distinct := map[*Round]bool{}
	for _, r := range rounds {
		distinct[r] = true
		waitDone(t, r, "concurrent add")
	}
	waitDone(t, first, "first add")
	if len(distinct) > 2 {
		t.Errorf("%d concurrent Adds during a slow Sync landed in %d rounds, want <= 2", adders, len(distinct))
	}
	if n := l.syncs.Load(); n > 3 {
		t.Errorf("Syncs = %d for %d Adds, want <= 3 (group commit)", n, adders+1)
	}
	st := c.Stats()
	if st.Batches != adders+1 {
		t.Errorf("Stats.Batches = %d, want %d", st.Batches, adders+1)
	}
	if st.Rounds != l.syncs.Load() {
		t.Errorf("Stats.Rounds = %d, Syncs of the only log = %d; want equal", st.Rounds, l.syncs.Load())
	}
}

// TestRoundCoversAdd: the round an Add returns completes only after a Sync of
// that log which started after the Add — the durability invariant. Many
// goroutines Add while the committer runs rounds back to back.
func TestRoundCoversAdd(t *testing.T) {
	c := New(Options{})
	logs := []*fakeLog{{delay: time.Millisecond}, {delay: 2 * time.Millisecond}, {}}
	runCommitter(t, c)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				l := logs[(g+i)%len(logs)]
				addSeq := seq.Add(1)
				r := c.Add(l, 1)
				select {
				case <-r.Done():
				case <-time.After(10 * time.Second):
					failures.Add(1)
					return
				}
				if !l.syncStartedAfter(addSeq) {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d rounds completed without a Sync that started after their Add", n)
	}
	if st := c.Stats(); st.Batches != 8*50 {
		t.Errorf("Stats.Batches = %d, want %d", st.Batches, 8*50)
	}
}

// TestAddDuringSyncGoesToNextRound: an Add made while a round's Sync runs is
// not released by that round.
func TestAddDuringSyncGoesToNextRound(t *testing.T) {
	c := New(Options{})
	l := &fakeLog{delay: 100 * time.Millisecond, started: make(chan struct{}, 1)}
	r1 := c.Add(l, 1)
	flushed := make(chan struct{})
	go func() { c.Flush(); close(flushed) }()
	<-l.started
	r2 := c.Add(l, 1)
	if r2 == r1 {
		t.Fatal("Add during a running Sync returned the running round")
	}
	<-flushed
	if !isDone(r1) {
		t.Fatal("first round not done after its Flush")
	}
	if isDone(r2) {
		t.Fatal("second round done without a Sync after its Add")
	}
	c.Flush()
	if !isDone(r2) {
		t.Fatal("second round not done after the second Flush")
	}
	if n := l.syncs.Load(); n != 2 {
		t.Errorf("Syncs = %d, want 2", n)
	}
}

// TestRoundsCompleteInOrder: a Flush while Run's round is syncing must not
// finish a later round before the earlier one (produce waits only on the last
// round of a request, relying on this order).
func TestRoundsCompleteInOrder(t *testing.T) {
	c := New(Options{})
	slow := &fakeLog{delay: 200 * time.Millisecond, started: make(chan struct{}, 1)}
	fast := &fakeLog{}
	runCommitter(t, c)
	r1 := c.Add(slow, 1)
	<-slow.started
	r2 := c.Add(fast, 1)
	c.Flush()
	if isDone(r2) && !isDone(r1) {
		t.Fatal("a later round completed before an earlier one")
	}
	waitDone(t, r1, "first")
	waitDone(t, r2, "second")
}

func TestNext(t *testing.T) {
	c := New(Options{})
	l := &fakeLog{}
	n := c.Next()
	if isDone(n) {
		t.Fatal("Next round done before any round ran")
	}
	c.Flush() // nothing dirty: no round, Next stays pending
	if isDone(n) {
		t.Fatal("Next round done after an empty Flush")
	}
	r := c.Add(l, 3)
	if r != n {
		t.Error("Add returned a different round than Next had announced")
	}
	c.Flush()
	if !isDone(n) {
		t.Fatal("Next round not done after the next round completed")
	}
	n2 := c.Next()
	if n2 == n || isDone(n2) {
		t.Fatal("Next after a round must be a fresh pending round")
	}
	c.Add(l, 1)
	c.Flush()
	if !isDone(n2) {
		t.Fatal("second Next round not done")
	}
}

func TestStats(t *testing.T) {
	var observed []int
	c := New(Options{Observe: func(_ time.Duration, batches int) { observed = append(observed, batches) }})
	a, b := &fakeLog{}, &fakeLog{}
	rounds := [][]struct {
		l *fakeLog
		n int
	}{
		{{a, 2}, {b, 3}},         // 5 batches, 2 logs
		{{a, 1}},                 // 1 batch
		{{b, 4}, {b, 6}},         // 10 batches, 1 log (marked twice)
		{{a, 0}, {b, 0}},         // duplicates only: 0 batches, 2 logs
		{{a, 7}, {b, 1}, {a, 1}}, // 9 batches, 2 logs
	}
	var wantBatches, wantSyncs int64
	for i, rd := range rounds {
		logs := map[*fakeLog]bool{}
		var n int
		for _, add := range rd {
			c.Add(add.l, add.n)
			logs[add.l] = true
			n += add.n
		}
		c.Flush()
		wantBatches += int64(n)
		wantSyncs += int64(len(logs))
		st := c.Stats()
		if st.Rounds != int64(i+1) || st.Batches != wantBatches || st.LastBatches != int64(n) || st.Syncs != wantSyncs {
			t.Errorf("after round %d: Stats = %+v, want Rounds %d Batches %d LastBatches %d Syncs %d",
				i+1, st, i+1, wantBatches, n, wantSyncs)
		}
		if len(observed) != i+1 || observed[i] != n {
			t.Errorf("Observe calls = %v, want last = %d", observed, n)
		}
	}
	if got := a.syncs.Load() + b.syncs.Load(); got != wantSyncs {
		t.Errorf("fake logs saw %d Syncs, committer counted %d", got, wantSyncs)
	}
}

// TestRunFinalRound: cancelling Run's context runs one last round, so logs
// marked dirty before shutdown are synced and their waiters released.
func TestRunFinalRound(t *testing.T) {
	c := New(Options{})
	l := &fakeLog{}
	// Mark dirty before Run starts, then drain the kick so only the final
	// round on cancel can sync it.
	r := c.Add(l, 1)
	<-c.kick
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !isDone(r) {
		t.Fatal("round pending after Run returned")
	}
	if n := l.syncs.Load(); n != 1 {
		t.Errorf("Syncs = %d, want 1 (final round)", n)
	}
}

// TestSyncFailure: a failing Sync is counted and still releases its waiters
// (they check their log's state themselves); other logs in the round sync.
func TestSyncFailure(t *testing.T) {
	c := New(Options{Parallelism: 2})
	bad := &fakeLog{err: errors.New("EIO")}
	good := []*fakeLog{{}, {}, {}}
	rBad := c.Add(bad, 1)
	for _, g := range good {
		c.Add(g, 1)
	}
	c.Flush()
	if !isDone(rBad) {
		t.Fatal("round with a failed Sync never released its waiters")
	}
	st := c.Stats()
	if st.SyncFailures != 1 || st.Syncs != 4 || st.Rounds != 1 {
		t.Errorf("Stats = %+v, want 1 failure of 4 syncs in 1 round", st)
	}
	for i, g := range good {
		if g.syncs.Load() != 1 {
			t.Errorf("good log %d synced %d times, want 1", i, g.syncs.Load())
		}
	}
	// With Run too.
	runCommitter(t, c)
	r := c.Add(bad, 1)
	waitDone(t, r, "failed sync under Run")
	if got := c.Stats().SyncFailures; got != 2 {
		t.Errorf("SyncFailures = %d, want 2", got)
	}
}

// TestParallelismBound: no more than Parallelism Syncs run at once.
func TestParallelismBound(t *testing.T) {
	const par = 3
	c := New(Options{Parallelism: par})
	var cur, peak atomic.Int64
	logs := make([]*trackingLog, 12)
	for i := range logs {
		logs[i] = &trackingLog{cur: &cur, peak: &peak}
		c.Add(logs[i], 1)
	}
	c.Flush()
	if p := peak.Load(); p > par || p < 2 {
		t.Errorf("peak concurrent Syncs = %d, want between 2 and %d", p, par)
	}
	for i, l := range logs {
		if l.n.Load() != 1 {
			t.Errorf("log %d synced %d times", i, l.n.Load())
		}
	}
}

type trackingLog struct {
	cur, peak *atomic.Int64
	n         atomic.Int64
}

func (l *trackingLog) Sync() (int64, error) {
	l.n.Add(1)
	c := l.cur.Add(1)
	for {
		p := l.peak.Load()
		if c <= p || l.peak.CompareAndSwap(p, c) {
			break
		}
	}
	time.Sleep(10 * time.Millisecond)
	l.cur.Add(-1)
	return 0, nil
}

// TestWaitBufferBackPressure: producers wait while unsynced bytes reach the
// bound and are released by the round that syncs them, not by a timer.
func TestWaitBufferBackPressure(t *testing.T) {
	gate := make(chan struct{})
	l := &gatedLog{gate: gate}
	c := New(Options{MaxBufferBytes: 100})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitBuffer(time.Now().Add(time.Second)); err != nil {
		t.Fatalf("empty buffer: %v", err)
	}
	r := c.AddBytes(l, 1, 150) // over the bound; its sync blocks on gate
	if got := c.Buffered(); got != 150 {
		t.Fatalf("Buffered = %d, want 150", got)
	}
	if err := c.WaitBuffer(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("full buffer: got %v, want ErrBufferFull", err)
	}
	released := make(chan error, 1)
	go func() { released <- c.WaitBuffer(time.Now().Add(10 * time.Second)) }()
	select {
	case err := <-released:
		t.Fatalf("released before the sync finished: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	<-r.Done()
	select {
	case err := <-released:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not released after the round completed")
	}
	if got := c.Buffered(); got != 0 {
		t.Fatalf("Buffered after round = %d, want 0", got)
	}
}

type gatedLog struct{ gate chan struct{} }

func (g *gatedLog) Sync() (int64, error) { <-g.gate; return 0, nil }

// Tick fires when the round in flight completes, even if nothing else is
// appended: a fetch that arrives while its data is being synced must wake
// then. The accumulating round (Next) does not complete without appends,
// which is how a follower's fetch once waited its whole MaxWait.
func TestTickCoversTheRoundInFlight(t *testing.T) {
	c := New(Options{})
	l := &fakeLog{delay: 200 * time.Millisecond, started: make(chan struct{}, 1)}
	stop := runCommitter(t, c)
	defer stop()
	r := c.Add(l, 1)
	<-l.started // the round is in flight
	tick, next := c.Tick(), c.Next()
	select {
	case <-tick:
	case <-time.After(5 * time.Second):
		t.Fatal("Tick did not fire when the round in flight completed")
	}
	waitDone(t, r, "the round in flight")
	time.Sleep(50 * time.Millisecond)
	if isDone(next) {
		t.Fatal("the accumulating round completed with nothing in it")
	}
}
