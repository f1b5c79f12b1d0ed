package group

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stableGroup forms group gid with two members and returns their ids.
func stableGroup(t *testing.T, c *Coordinator, gid string) (string, string) {
	t.Helper()
	a, b := newMember(t, c, gid), newMember(t, c, gid)
	wa, wb := c.Join(joinReq(gid, a)), c.Join(joinReq(gid, b))
	ra, _ := wa(ctx(t))
	rb, _ := wb(ctx(t))
	want(t, "join a", ra.Err, nil)
	want(t, "join b", rb.Err, nil)
	sb := c.Sync(&SyncRequest{Group: gid, MemberID: b, Generation: ra.Generation})
	sa := c.Sync(&SyncRequest{Group: gid, MemberID: a, Generation: ra.Generation, Assignments: map[string][]byte{a: []byte("A"), b: []byte("B")}})
	if r, _ := sa(ctx(t)); r.Err != 0 {
		t.Fatalf("sync a: %+v", r)
	}
	if r, _ := sb(ctx(t)); r.Err != 0 {
		t.Fatalf("sync b: %+v", r)
	}
	return a, b
}

// waitPersisted waits until the group's goroutine has written its record
// (persist runs after the operation that answered the test).
func waitPersisted(t *testing.T, c *Coordinator, gid string) {
	t.Helper()
	done, _ := ask(c, gid, false, false, func(g *group) bool { return g.persisted == g.persistKey() })(ctx(t))
	if !done {
		t.Fatal("group state not persisted")
	}
}

// TestGroupStateSurvivesRestart: a Stable classic group is restored with its
// generation, leader and assignments, and its members' heartbeats carry on
// without a rebalance, after a clean restart and after a crash.
func TestGroupStateSurvivesRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			dir := t.TempDir()
			c := openTest(t, dir, nil)
			a, b := stableGroup(t, c, "g")
			waitPersisted(t, c, "g")
			if !crash {
				c.Close()
			}
			c2 := openTest(t, dir, nil)
			d, _ := c2.Describe("g")(ctx(t))
			if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 {
				t.Fatalf("restored group: %+v", d)
			}
			for _, m := range d.Members {
				if want := map[string]string{a: "A", b: "B"}[m.MemberID]; string(m.Assignment) != want || string(m.Metadata) != m.MemberID+"range" || m.ClientID != "c" {
					t.Fatalf("restored member %+v", m)
				}
			}
			want(t, "heartbeat a", code(t, c2.Heartbeat("g", MemberRef{MemberID: a}, 1)), nil)
			want(t, "heartbeat b", code(t, c2.Heartbeat("g", MemberRef{MemberID: b}, 1)), nil)
			want(t, "stale generation", code(t, c2.Heartbeat("g", MemberRef{MemberID: a}, 0)), kerr.IllegalGeneration)
			// A follower's SyncGroup of the generation gets its assignment back.
			if r, _ := c2.Sync(&SyncRequest{Group: "g", MemberID: b, Generation: 1})(ctx(t)); r.Err != 0 || string(r.Assignment) != "B" {
				t.Fatalf("sync after restart: %+v", r)
			}
			// A member rejoining unchanged gets the current generation: no rebalance.
			if r := mustJoin(t, c2, joinReq("g", b)); r.Err != 0 || r.Generation != 1 {
				t.Fatalf("rejoin after restart: %+v", r)
			}
			// Both leave: Empty, generation kept across another restart.
			codes, _ := c2.Leave("g", []MemberRef{{MemberID: a}, {MemberID: b}})(ctx(t))
			want(t, "leave", codes[0], nil)
			checkFor(t, 5*time.Second, func() error {
				if d, _ := c2.Describe("g")(ctx(t)); d.State != "Empty" {
					return fmt.Errorf("state %s", d.State)
				}
				return nil
			})
			waitPersisted(t, c2, "g")
			c2.Close()
			c3 := openTest(t, dir, nil)
			if d, _ := c3.Describe("g")(ctx(t)); d.State != "Empty" {
				t.Fatalf("after restart of the emptied group: %+v", d)
			}
			a2 := newMember(t, c3, "g")
			if r := mustJoin(t, c3, joinReq("g", a2)); r.Err != 0 || r.Generation != 3 {
				t.Fatalf("first join after restart: generation %d, want 3 (2 was the empty one)", r.Generation)
			}
		})
	}
}

// TestDeletedGroupStaysDeleted: DeleteGroups writes a tombstone; the group
// is not restored.
func TestDeletedGroupStaysDeleted(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, nil)
	a, b := stableGroup(t, c, "g")
	c.Leave("g", []MemberRef{{MemberID: a}, {MemberID: b}})(ctx(t))
	checkFor(t, 5*time.Second, func() error {
		if d, _ := c.Describe("g")(ctx(t)); d.State != "Empty" {
			return fmt.Errorf("state %s", d.State)
		}
		return nil
	})
	want(t, "delete", code(t, c.Delete("g")), nil)
	c.Close()
	c2 := openTest(t, dir, nil)
	if d, _ := c2.Describe("g")(ctx(t)); d.State != "" {
		t.Fatalf("deleted group restored: %+v", d)
	}
}

// TestGroupRecordsInKafkaFormat: the records are Kafka's schemas, in the
// partition Kafka would pick for the group.
func TestGroupRecordsInKafkaFormat(t *testing.T) {
	dir := t.TempDir()
	parts := statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)
	c := openTest(t, dir, func(o *Options) { o.Offsets = parts })
	stableGroup(t, c, "orders-app")
	waitPersisted(t, c, "orders-app")
	p := statelog.PartitionFor("orders-app", testPartitions)
	var sawGroup bool
	for i, part := range parts {
		part.Replay(func(off int64, r *kmsg.Record) error {
			if i != p {
				t.Errorf("record in partition %d, want %d", i, p)
			}
			var k kmsg.GroupMetadataKey
			var v kmsg.GroupMetadataValue
			if k.ReadFrom(r.Key) == nil && k.Version == 2 && v.ReadFrom(r.Value) == nil {
				sawGroup = k.Group == "orders-app" && v.Generation == 1 && len(v.Members) == 2 && *v.Protocol == "range"
			}
			return nil
		})
	}
	if !sawGroup {
		t.Fatal("no GroupMetadata record for the stable group")
	}
}

// checkLegacy checks what testdata/v1-offsets holds: written by the release
// before internal topics (billing committed twice, audit's partition 1
// deleted with OffsetDelete, group "gone" deleted with DeleteGroups).
func checkLegacy(t *testing.T, c *Coordinator) {
	t.Helper()
	b := c.FetchOffsets("billing", nil)
	if len(b) != 3 || b[TP{"orders", 0}].Offset != 7 || b[TP{"orders", 1}].Offset != 8 || b[TP{"orders", 2}].Offset != 9 ||
		b[TP{"orders", 0}].Metadata != "m1" || b[TP{"orders", 0}].CommitMs == 0 {
		t.Fatalf("billing: %+v", b)
	}
	if a := c.FetchOffsets("audit", nil); len(a) != 1 || a[TP{"orders", 0}].Offset != 1 {
		t.Fatalf("audit: %+v", a)
	}
	if g := c.FetchOffsets("gone", nil); len(g) != 0 {
		t.Fatalf("gone: %+v", g)
	}
}

// TestMigrateLegacyOffsets migrates an offsets log written by the previous
// release, and again with a crash injected at each step: the next start
// always ends with the same offsets and no old directory.
func TestMigrateLegacyOffsets(t *testing.T) {
	for _, step := range []string{"", "read", "partition", "written", "renamed"} {
		t.Run("crash at "+step, func(t *testing.T) {
			dir := t.TempDir()
			statelogtest.CopyDir(t, "testdata/v1-offsets", filepath.Join(dir, legacyOffsetsDir))
			if step != "" {
				crash := errors.New("injected crash at " + step)
				migrateHook = func(s string) error {
					if s == step {
						return crash
					}
					return nil
				}
				_, err := Open(Options{DataDir: dir, Offsets: statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)})
				migrateHook = nil
				if !errors.Is(err, crash) {
					t.Fatalf("open with a crash at %s: %v", step, err)
				}
			}
			c := openTest(t, dir, nil)
			checkLegacy(t, c)
			for _, d := range []string{legacyOffsetsDir, legacyOffsetsDir + statelog.MigratedSuffix} {
				if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
					t.Fatalf("%s left behind", d)
				}
			}
			c.Close()
			checkLegacy(t, openTest(t, dir, nil))
		})
	}
}
