package txn

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// v1Written is when testdata/v1-state was written, by chronik-server built
// at commit 390b42d driven by franz-go 1.22 (transaction version 2):
// "tx-committed" (producer 0) committed one record batch to events-0 with
// offset 3 for group "etl"; "tx-aborted" (producer 1) aborted; "tx-open"
// (producer 2, epoch 0, timeout 15 minutes) was left Ongoing with events-1
// enrolled and offset 5 of events-0 staged for group "etl-open".
var v1Written = time.UnixMilli(1796619312044)

// checkV1 checks the migrated state of testdata/v1-state.
func checkV1(t *testing.T, c *Coordinator) {
	t.Helper()
	d := c.Describe([]string{"tx-committed", "tx-aborted", "tx-open"})
	if e := d["tx-committed"]; e.Status != CompleteCommit || e.PID != 0 || e.Epoch != 1 || e.TimeoutMs != 900000 ||
		e.Prev == nil || *e.Prev != (Producer{0, 0}) || len(e.Partitions) != 0 {
		t.Fatalf("tx-committed: %+v", e)
	}
	if e := d["tx-aborted"]; e.Status != CompleteAbort || e.PID != 1 || e.Epoch != 1 {
		t.Fatalf("tx-aborted: %+v", e)
	}
	e := d["tx-open"]
	if e.Status != Ongoing || e.PID != 2 || e.Epoch != 0 || e.StartMs != 1796619312037 || !e.OffsetsLogged ||
		!slices.Equal(e.Partitions, []TP{{"events", 1}}) || !slices.Equal(e.Groups, []string{"etl-open"}) ||
		len(e.Offsets["etl-open"]) != 1 || e.Offsets["etl-open"][0] != (Offset{TP{"events", 0}, 5, -1, "meta-tx-open"}) {
		t.Fatalf("tx-open: %+v", e)
	}
}

// TestMigrateLegacyState migrates the state log written by the previous
// release, again with a crash injected at each step, and from a compaction
// of it cut between its renames: the next start always ends with the same
// states and no old directory.
func TestMigrateLegacyState(t *testing.T) {
	for _, step := range []string{"", "read", "partition", "written", "renamed", "swap"} {
		t.Run("crash at "+step, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			clk.ms.Store(v1Written.Add(time.Minute).UnixMilli())
			mod := func(o *Options) { o.Now = clk.now }
			legacy := filepath.Join(dir, legacyStateDir)
			switch step {
			case "swap":
				// The old release crashed between renaming its log
				// aside and its compacted copy in.
				statelogtest.CopyDir(t, "testdata/v1-state", legacy+storage.CompactSuffix)
				statelogtest.CopyDir(t, "testdata/v1-state", legacy+storage.OldSuffix)
			case "":
				statelogtest.CopyDir(t, "testdata/v1-state", legacy)
			default:
				statelogtest.CopyDir(t, "testdata/v1-state", legacy)
				crash := errors.New("injected crash at " + step)
				migrateHook = func(s string) error {
					if s == step {
						return crash
					}
					return nil
				}
				_, err := Open(Options{DataDir: dir, State: statelogtest.Open(t, dir, "__transaction_state", testPartitions), Markers: &fakeMarkers{}})
				migrateHook = nil
				if !errors.Is(err, crash) {
					t.Fatalf("open with a crash at %s: %v", step, err)
				}
			}
			m := &fakeMarkers{}
			c := openOpts(t, dir, m, mod)
			checkV1(t, c)
			if len(m.markers) != 0 {
				t.Fatalf("migration wrote markers %+v", m.markers)
			}
			for _, d := range []string{"", statelog.MigratedSuffix, storage.CompactSuffix, storage.OldSuffix} {
				if _, err := os.Stat(legacy + d); err == nil {
					t.Fatalf("%s left behind", legacyStateDir+d)
				}
			}
			c.Close()
			c = openOpts(t, dir, m, mod)
			defer c.Close()
			checkV1(t, c)
		})
	}
}

// TestMigratedTransactionCarriesOn: the transaction the previous release
// left open is committed by its producer after the migration (EndTxn v5,
// as franz-go sends it), with its markers and staged offsets; or, if its
// producer is gone, the timeout aborts it from its original start.
func TestMigratedTransactionCarriesOn(t *testing.T) {
	t.Run("committed", func(t *testing.T) {
		dir := t.TempDir()
		statelogtest.CopyDir(t, "testdata/v1-state", filepath.Join(dir, legacyStateDir))
		clk := newClock()
		clk.ms.Store(v1Written.Add(time.Minute).UnixMilli())
		m := &fakeMarkers{}
		c := openOpts(t, dir, m, func(o *Options) { o.Now = clk.now })
		defer c.Close()
		if n := c.AbortExpired(); n != 0 {
			t.Fatalf("timeout check aborted %d", n)
		}
		wantErr(t, "produce", c.Enrolled("tx-open", 2, 0, TP{"events", 1}), nil)
		pid, epoch, err := c.EndV2("tx-open", 2, 0, true)
		wantProducer(t, "commit", pid, epoch, err, 2, 1)
		if len(m.markers) != 1 || !m.markers[0].commit || m.markers[0].epoch != 1 || !slices.Equal(m.markers[0].parts, []TP{{"events", 1}}) {
			t.Fatalf("markers %+v", m.markers)
		}
		if o := m.offsets["etl-open"]; len(o) != 1 || o[0].Offset != 5 || o[0].Metadata != "meta-tx-open" {
			t.Fatalf("offsets %+v", m.offsets)
		}
	})
	t.Run("timed out", func(t *testing.T) {
		dir := t.TempDir()
		statelogtest.CopyDir(t, "testdata/v1-state", filepath.Join(dir, legacyStateDir))
		clk := newClock()
		clk.ms.Store(v1Written.Add(16 * time.Minute).UnixMilli())
		m := &fakeMarkers{}
		c := openOpts(t, dir, m, func(o *Options) { o.Now = clk.now })
		defer c.Close()
		if n := c.AbortExpired(); n != 1 {
			t.Fatalf("timeout check aborted %d, want 1", n)
		}
		if len(m.markers) != 1 || m.markers[0].commit || m.markers[0].pid != 2 || m.markers[0].epoch != 1 || len(m.offsets) != 0 {
			t.Fatalf("markers %+v offsets %+v", m.markers, m.offsets)
		}
		_, _, err := c.EndV2("tx-open", 2, 0, true)
		wantErr(t, "commit after the timeout", err, kerr.ProducerFenced)
		if e := c.Describe([]string{"tx-open"})["tx-open"]; e.Status != CompleteAbort || e.Epoch != 1 || !e.TimedOut {
			t.Fatalf("after the timeout: %+v", e)
		}
	})
}
