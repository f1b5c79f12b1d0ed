package group

import (
	"testing"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
)

// Offsets of transactions coordinated on another broker: staged in the
// group's partition as transactional batches, visible at their COMMIT
// marker, dropped at ABORT, and the same after a replay, where a
// transaction still open stays pending and completes later.
func TestTxnOffsetsStagedInLog(t *testing.T) {
	dir := t.TempDir()
	parts := statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)
	c, err := Open(Options{DataDir: dir, Offsets: parts})
	if err != nil {
		t.Fatal(err)
	}
	gp := statelog.PartitionFor("g", testPartitions)
	log := parts[gp].(*statelogtest.Partition)
	tp := TP{"t", 0}
	commitMarker := func(pid int64, commit bool) int64 {
		t.Helper()
		off, err := log.AppendMarker(pid, 0, commit)
		if err != nil {
			t.Fatal(err)
		}
		c.CompleteTxn(gp, pid, commit, off)
		return off
	}
	// A plain commit first, then a transaction that commits over it.
	if code, _ := c.CommitOffsets("g", MemberRef{}, -1, []Commit{{TP: tp, Offset: 5}})(ctx(t)); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if err := c.StageTxnOffsets("g", 7, 0, []Commit{{TP: tp, Offset: 10}}); err != nil {
		t.Fatal(err)
	}
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 5 || !c.PendingTxnOffsets("g")[tp] {
		t.Fatalf("staged: offset %d, pending %v; want 5 and pending", got, c.PendingTxnOffsets("g"))
	}
	commitMarker(7, true)
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 10 || len(c.PendingTxnOffsets("g")) != 0 {
		t.Fatalf("committed: offset %d, pending %v", got, c.PendingTxnOffsets("g"))
	}
	// An aborted transaction changes nothing.
	if err := c.StageTxnOffsets("g", 8, 0, []Commit{{TP: tp, Offset: 20}}); err != nil {
		t.Fatal(err)
	}
	commitMarker(8, false)
	// One left open.
	if err := c.StageTxnOffsets("g", 9, 0, []Commit{{TP: tp, Offset: 30}}); err != nil {
		t.Fatal(err)
	}
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 10 {
		t.Fatalf("after an abort and an open transaction: %d, want 10", got)
	}
	c.Close()

	// Replay: 10 committed, 20 aborted, 30 pending.
	c = openTest(t, dir, nil)
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 10 || !c.PendingTxnOffsets("g")[tp] {
		t.Fatalf("replayed: offset %d, pending %v; want 10 and pending", got, c.PendingTxnOffsets("g"))
	}
	log = c.offsets.parts[gp].(*statelogtest.Partition)
	commitMarker(9, true)
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 30 {
		t.Fatalf("open transaction committed after the replay: %d, want 30", got)
	}
	// A plain commit after the marker wins, and keeps winning at replay.
	if code, _ := c.CommitOffsets("g", MemberRef{}, -1, []Commit{{TP: tp, Offset: 40}})(ctx(t)); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	c.Close()
	c = openTest(t, dir, nil)
	if got := c.FetchOffsets("g", nil)[tp].Offset; got != 40 || len(c.PendingTxnOffsets("g")) != 0 {
		t.Fatalf("final replay: offset %d, pending %v; want 40, none", got, c.PendingTxnOffsets("g"))
	}
}
