package txn

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ms atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *fakeClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func openOpts(t *testing.T, dir string, m *fakeMarkers, mod func(*Options)) *Coordinator {
	t.Helper()
	o := Options{DataDir: dir, State: statelogtest.Open(t, dir, "__transaction_state", testPartitions), Markers: m, CheckEvery: -1, ExpireEvery: -1, RetryEvery: -1}
	if mod != nil {
		mod(&o)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ids maps each entry of a listing to its state (for comparisons).
func listed(es []Entry) map[string]Status {
	out := map[string]Status{}
	for _, e := range es {
		out[e.ID] = e.Status
	}
	return out
}

func TestAdminDescribeAndList(t *testing.T) {
	clk := newClock()
	m := &fakeMarkers{}
	c := openOpts(t, t.TempDir(), m, func(o *Options) { o.Now = clk.now })
	defer c.Close()

	pa, ea, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add a", c.AddPartitions("a", pa, ea, []TP{{"t", 1}, {"u", 0}, {"t", 0}}), nil)
	startA := clk.now().UnixMilli()
	clk.advance(10 * time.Second)
	pb, eb, _ := c.InitProducerID("b", 30000, -1, -1)
	wantErr(t, "add b", c.AddPartitions("b", pb, eb, []TP{{"t", 0}}), nil)
	wantErr(t, "commit b", c.End("b", pb, eb, true), nil)
	pc, _, _ := c.InitProducerID("c", 1000, -1, -1)
	clk.advance(5 * time.Second)

	d := c.Describe([]string{"a", "b", "nope"})
	if len(d) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	a := d["a"]
	if a.Status != Ongoing || a.PID != pa || a.Epoch != ea || a.TimeoutMs != 60000 || a.StartMs != startA ||
		// Grouped by topic, as Kafka's record holds them.
		!slices.Equal(a.Partitions, []TP{{"t", 1}, {"t", 0}, {"u", 0}}) || !a.Running() {
		t.Fatalf("describe a: %+v", a)
	}
	if b := d["b"]; b.Status != CompleteCommit || b.PID != pb || len(b.Partitions) != 0 || b.Running() {
		t.Fatalf("describe b: %+v", b)
	}

	all := c.List(ListFilter{MinRunningMs: -1})
	if got := listed(all); !reflect.DeepEqual(got, map[string]Status{"a": Ongoing, "b": CompleteCommit, "c": Empty}) {
		t.Fatalf("list all: %v", got)
	}
	if !slices.IsSortedFunc(all, func(x, y Entry) int { return cmpString(x.ID, y.ID) }) {
		t.Fatal("list not sorted by id")
	}
	for _, tc := range []struct {
		name string
		f    ListFilter
		want []string
	}{
		{"states", ListFilter{Statuses: []Status{Empty, CompleteCommit}, MinRunningMs: -1}, []string{"b", "c"}},
		{"pids", ListFilter{PIDs: []int64{pa, pc}, MinRunningMs: -1}, []string{"a", "c"}},
		{"states and pids", ListFilter{Statuses: []Status{Ongoing}, PIDs: []int64{pb}, MinRunningMs: -1}, nil},
		{"running > 14s", ListFilter{MinRunningMs: 14000}, []string{"a"}},
		{"running > 15s", ListFilter{MinRunningMs: 15000}, nil},
		{"running > 0", ListFilter{MinRunningMs: 0}, []string{"a"}},
	} {
		var got []string
		for _, e := range c.List(tc.f) {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	for s, want := range map[string]bool{"Ongoing": true, "Dead": true, "PrepareEpochFence": true, "ongoing": false, "Foo": false} {
		if KnownStatus(s) != want {
			t.Errorf("KnownStatus(%q) = %v", s, !want)
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestExpireIDs: idle ids (Empty, Complete*) older than the expiration are
// forgotten, also after a reopen; running ones stay.
func TestExpireIDs(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	m := &fakeMarkers{}
	mod := func(o *Options) { o.Now, o.IDExpiration = clk.now, time.Hour }
	c := openOpts(t, dir, m, mod)

	pOld, eOld, _ := c.InitProducerID("old-done", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("old-done", pOld, eOld, []TP{{"t", 0}}), nil)
	wantErr(t, "commit", c.End("old-done", pOld, eOld, true), nil)
	c.InitProducerID("old-empty", 60000, -1, -1)
	pRun, eRun, _ := c.InitProducerID("old-running", 900000, -1, -1)
	wantErr(t, "add running", c.AddPartitions("old-running", pRun, eRun, []TP{{"t", 1}}), nil)
	clk.advance(30 * time.Minute)
	c.InitProducerID("recent", 60000, -1, -1)
	if n := c.ExpireIDs(); n != 0 {
		t.Fatalf("expired %d before the expiration", n)
	}
	clk.advance(31 * time.Minute)
	if n := c.ExpireIDs(); n != 2 {
		t.Fatalf("expired %d ids, want 2", n)
	}
	want := map[string]Status{"old-running": Ongoing, "recent": Empty}
	if got := listed(c.List(ListFilter{MinRunningMs: -1})); !reflect.DeepEqual(got, want) {
		t.Fatalf("after expiry: %v", got)
	}
	if _, ok := c.State("old-done"); ok {
		t.Fatal("expired id still has state")
	}
	// A reopen replays the tombstones. The running transaction stays open
	// across it, and the timeout check aborts it (its 15 minutes are up).
	c.Close()
	c = openOpts(t, dir, m, mod)
	if got := listed(c.List(ListFilter{MinRunningMs: -1})); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %v", got)
	}
	if n := c.AbortExpired(); n != 1 {
		t.Fatalf("timeout check after reopen aborted %d, want 1", n)
	}
	want["old-running"] = CompleteAbort
	if got := listed(c.List(ListFilter{MinRunningMs: -1})); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %v", got)
	}
	// An expired id starts afresh with a new producer id.
	p2, e2, kerrv := c.InitProducerID("old-done", 60000, -1, -1)
	wantErr(t, "re-init expired", kerrv, nil)
	if p2 == pOld || e2 != 0 {
		t.Fatalf("re-init of expired id: pid %d (old %d) epoch %d", p2, pOld, e2)
	}
	// Every id expired: what replay finds last for each is a tombstone.
	clk.advance(2 * time.Hour)
	if n := c.ExpireIDs(); n != 3 {
		t.Fatalf("second expiry removed %d, want 3", n)
	}
	c.Close()
	c = openOpts(t, dir, m, mod)
	defer c.Close()
	if got := c.List(ListFilter{MinRunningMs: -1}); len(got) != 0 {
		t.Fatalf("after expiring everything: %v", listed(got))
	}
}

// TestExpireRacesRequests: requests on an id that is being expired either
// see the old entry or start a new one; none is lost or left in a dead
// entry.
func TestExpireRacesRequests(t *testing.T) {
	clk := newClock()
	m := &fakeMarkers{}
	c := openOpts(t, t.TempDir(), m, func(o *Options) {
		o.IDExpiration = time.Millisecond
		o.Now = func() time.Time { clk.advance(time.Second); return clk.now() }
	})
	defer c.Close()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := fmt.Sprint("id", (w+i)%4)
				if _, _, e := c.InitProducerID(id, 60000, -1, -1); e != nil {
					t.Errorf("init %s: %v", id, e)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			c.ExpireIDs()
		}
	}()
	wg.Wait()
	for i := range 4 {
		id := fmt.Sprint("id", i)
		if st, ok := c.State(id); ok && st.Status != Empty {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	c.ExpireIDs()
	if got := c.List(ListFilter{MinRunningMs: -1}); len(got) != 0 {
		t.Fatalf("left after the last expiry: %v", listed(got))
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left in memory", n)
	}
}
