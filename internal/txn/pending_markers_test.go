package txn

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestDecidedCommitWaitsForMarkers: on a cluster a partition leader can be
// down when a transaction ends. The commit is decided once PrepareCommit is
// durable, so EndTxn succeeds; the id then refuses a new transaction with
// CONCURRENT_TRANSACTIONS (which clients retry) until the markers are
// written in the background, and nothing of it is lost or doubled.
func TestDecidedCommitWaitsForMarkers(t *testing.T) {
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, nil) // RetryEvery from openOpts: never (RetryPending below)
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	tp := TP{"t", 0}
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "add group", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "offsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 3}}), nil)
	m.fail = errors.New("broker 3: connection refused")
	wantErr(t, "commit while a leader is down", c.End("a", pid, epoch, true), nil)
	if st, _ := c.State("a"); st.Status != PrepareCommit {
		t.Fatalf("status %s, want PrepareCommit", st.Status)
	}
	if n := c.PendingCompletions(); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	wantErr(t, "next transaction", c.AddPartitions("a", pid, epoch, []TP{tp}), kerr.ConcurrentTransactions)
	wantErr(t, "retried commit", c.End("a", pid, epoch, true), kerr.ConcurrentTransactions)
	wantErr(t, "abort of the decided commit", c.End("a", pid, epoch, false), kerr.InvalidTxnState)
	if _, _, e := c.InitProducerID("a", 60000, pid, epoch); e != kerr.ConcurrentTransactions {
		t.Fatalf("init while pending: %v", e)
	}
	if n := c.RetryPending(); n != 0 {
		t.Fatalf("finished %d while the markers still fail", n)
	}
	if len(m.markers) != 0 || len(m.offsets) != 0 {
		t.Fatalf("wrote %+v %+v while failing", m.markers, m.offsets)
	}

	m.mu.Lock()
	m.fail = nil
	m.mu.Unlock()
	if n := c.RetryPending(); n != 1 {
		t.Fatalf("finished %d, want 1", n)
	}
	if c.PendingCompletions() != 0 {
		t.Fatal("still pending after completion")
	}
	st, _ := c.State("a")
	if st.Status != CompleteCommit {
		t.Fatalf("status %s, want CompleteCommit", st.Status)
	}
	if len(m.markers) != 1 || !m.markers[0].commit || m.markers[0].epoch != epoch {
		t.Fatalf("markers %+v", m.markers)
	}
	if o := m.offsets["g"]; len(o) != 1 || o[0].Offset != 3 {
		t.Fatalf("offsets %+v", m.offsets)
	}
	wantErr(t, "retried commit after completion", c.End("a", pid, epoch, true), nil)
	wantErr(t, "next transaction after completion", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
}

// TestRetryLoopCompletes: the background loop finishes a decided
// transaction by itself once its markers can be written.
func TestRetryLoopCompletes(t *testing.T) {
	m := &fakeMarkers{}
	c := openOpts(t, t.TempDir(), m, func(o *Options) { o.RetryEvery = 10 * time.Millisecond })
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	m.mu.Lock()
	m.fail = errors.New("unreachable")
	m.mu.Unlock()
	wantErr(t, "abort while a leader is down", c.End("a", pid, epoch, false), nil)
	time.Sleep(50 * time.Millisecond) // some failing rounds
	m.mu.Lock()
	m.fail = nil
	m.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := c.State("a")
		if st.Status == CompleteAbort {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %s after 5 s, want CompleteAbort", st.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.markers) != 1 || m.markers[0].commit {
		t.Fatalf("markers %+v, want one ABORT", m.markers)
	}
}

// TestOpenWithUnreachableMarkers: a coordinator that reopens with a decided
// transaction whose partitions are unreachable still opens (a broker must
// start), and finishes the transaction later.
func TestOpenWithUnreachableMarkers(t *testing.T) {
	dir := t.TempDir()
	m := &fakeMarkers{}
	c := open(t, dir, m, nil)
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	m.fail = errors.New("unreachable")
	wantErr(t, "commit", c.End("a", pid, epoch, true), nil)
	c.Close()

	m2 := &fakeMarkers{fail: errors.New("still unreachable")}
	c2 := open(t, dir, m2, nil)
	defer c2.Close()
	if st, _ := c2.State("a"); st.Status != PrepareCommit || c2.PendingCompletions() != 1 {
		t.Fatalf("reopened as %s with %d pending", st.Status, c2.PendingCompletions())
	}
	m2.mu.Lock()
	m2.fail = nil
	m2.mu.Unlock()
	if c2.RetryPending() != 1 {
		t.Fatal("not completed after the partitions came back")
	}
	if len(m2.markers) != 1 || !m2.markers[0].commit {
		t.Fatalf("markers %+v", m2.markers)
	}
}

// TestInitAbortWaitsForMarkers: an InitProducerId that aborts the ongoing
// transaction while a leader is down answers CONCURRENT_TRANSACTIONS, and
// the producer's retry with the epoch it had is still accepted once the
// markers are written (not fenced by the bump the abort made).
func TestInitAbortWaitsForMarkers(t *testing.T) {
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, nil)
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	m.fail = errors.New("unreachable")
	if _, _, e := c.InitProducerID("a", 60000, pid, epoch); e != kerr.ConcurrentTransactions {
		t.Fatalf("init over an ongoing transaction with a leader down: %v", e)
	}
	if _, _, e := c.InitProducerID("a", 60000, pid, epoch); e != kerr.ConcurrentTransactions {
		t.Fatalf("retried init while still down: %v", e)
	}
	m.fail = nil
	p, ep, e := c.InitProducerID("a", 60000, pid, epoch)
	wantErr(t, "retried init", e, nil)
	if p != pid || ep <= epoch {
		t.Fatalf("init gave %d/%d", p, ep)
	}
	if len(m.markers) != 1 || m.markers[0].commit || m.markers[0].epoch != epoch+1 {
		t.Fatalf("markers %+v, want one ABORT at epoch %d", m.markers, epoch+1)
	}
	wantErr(t, "old epoch after the new one", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), kerr.ProducerFenced)
}
