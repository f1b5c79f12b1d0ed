package txn

import (
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
)

// TestStateLogCompaction: with a small threshold the log stays bounded over
// many transactions, and a reopen sees the same states.
func TestStateLogCompaction(t *testing.T) {
	dir := t.TempDir()
	m := &fakeMarkers{}
	mod := func(o *Options) { o.CompactBytes = 16 << 10 }
	c := openOpts(t, dir, m, mod)
	pids := map[string]int64{}
	for i := range 5 {
		id := fmt.Sprint("id", i)
		pids[id], _, _ = c.InitProducerID(id, 60000, -1, -1)
	}
	for round := range 200 {
		id := fmt.Sprint("id", round%5)
		wantErr(t, "add", c.AddPartitions(id, pids[id], 0, []TP{{"t", int32(round % 3)}}), nil)
		wantErr(t, "end", c.End(id, pids[id], 0, round%2 == 0), nil)
	}
	// 600 records of ~200 bytes without compaction.
	if n := c.LogSize(); n > 40<<10 {
		t.Fatalf("state log is %d bytes", n)
	}
	for _, suffix := range []string{storage.CompactSuffix, storage.OldSuffix} {
		if _, err := os.Stat(stateDir(dir) + suffix); err == nil {
			t.Fatalf("%s left behind", suffix)
		}
	}
	before := c.List(ListFilter{MinRunningMs: -1})
	c.Close()
	c = openOpts(t, dir, m, mod)
	defer c.Close()
	if after := c.List(ListFilter{MinRunningMs: -1}); !reflect.DeepEqual(before, after) || len(after) != 5 {
		t.Fatalf("after reopen:\n%+v\nwant\n%+v", after, before)
	}
	// Transactions continue with the same ids and epochs.
	wantErr(t, "add after reopen", c.AddPartitions("id0", pids["id0"], 0, []TP{{"t", 0}}), nil)
}

type crashed struct{ step string }

// TestStateLogCompactionCrash cuts a compaction at every step (a panic from
// the hook stands for the process dying there; nothing is cleaned up) and
// reopens: the state must be exactly what it was, with no leftovers, and the
// log usable.
func TestStateLogCompactionCrash(t *testing.T) {
	steps := []string{"written", "synced", "closed"}
	for s := 1; s <= storage.SwapSteps; s++ {
		steps = append(steps, fmt.Sprint("swap", s))
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			m := &fakeMarkers{}
			mod := func(o *Options) { o.Now, o.IDExpiration = clk.now, time.Hour }
			c := openOpts(t, dir, m, mod)
			// Every kind of record: committed, aborted, empty, and an
			// id that expired (tombstone).
			for i, end := range []string{"commit", "abort", "empty", "expired"} {
				id := fmt.Sprint(end, i)
				pid, ep, _ := c.InitProducerID(id, 60000, -1, -1)
				if end == "commit" || end == "abort" {
					wantErr(t, "add", c.AddPartitions(id, pid, ep, []TP{{"t", int32(i)}}), nil)
					wantErr(t, "end", c.End(id, pid, ep, end == "commit"), nil)
				}
				if end == "expired" {
					clk.advance(2 * time.Hour)
					if n := c.ExpireIDs(); n != 4 {
						t.Fatalf("expired %d", n)
					}
					// Recreate the others after the expiry.
					for j, again := range []string{"commit", "abort", "empty"} {
						id := fmt.Sprint(again, j)
						pid, ep, _ := c.InitProducerID(id, 60000, -1, -1)
						if again != "empty" {
							wantErr(t, "add", c.AddPartitions(id, pid, ep, []TP{{"t", int32(j)}}), nil)
							wantErr(t, "end", c.End(id, pid, ep, again == "commit"), nil)
						}
					}
				}
			}
			want := c.List(ListFilter{MinRunningMs: -1})
			if len(want) != 3 {
				t.Fatalf("before compaction: %v", listed(want))
			}
			c.opts.swapHook = func(s string) {
				if s == step {
					panic(crashed{s})
				}
			}
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatalf("compaction did not reach step %s", step)
					} else if _, ok := r.(crashed); !ok {
						panic(r)
					}
				}()
				c.Compact()
			}()
			// The crashed coordinator is abandoned as it is.
			c2 := openOpts(t, dir, m, mod)
			defer c2.Close()
			if got := c2.List(ListFilter{MinRunningMs: -1}); !reflect.DeepEqual(got, want) {
				t.Fatalf("after crash at %s:\n%+v\nwant\n%+v", step, got, want)
			}
			for _, suffix := range []string{storage.CompactSuffix, storage.OldSuffix} {
				if _, err := os.Stat(stateDir(dir) + suffix); err == nil {
					t.Fatalf("%s left behind", suffix)
				}
			}
			pid, ep, kerrv := c2.InitProducerID("commit0", 60000, -1, -1)
			wantErr(t, "init after crash", kerrv, nil)
			wantErr(t, "add after crash", c2.AddPartitions("commit0", pid, ep, []TP{{"t", 9}}), nil)
			if err := c2.Compact(); err != nil {
				t.Fatal(err)
			}
			if st, _ := c2.State("commit0"); st.Status != Ongoing || st.Epoch != ep {
				t.Fatalf("after compaction: %+v", st)
			}
		})
	}
}
