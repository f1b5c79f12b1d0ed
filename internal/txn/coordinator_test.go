package txn

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type marker struct {
	pid    int64
	epoch  int16
	commit bool
	parts  []TP
}

type fakeMarkers struct {
	mu      sync.Mutex
	nextPID int64
	markers []marker
	offsets map[string][]Offset
	fail    error // WriteMarkers fails with it when set
}

func (f *fakeMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts []TP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.markers = append(f.markers, marker{pid, epoch, commit, slices.Clone(parts)})
	return nil
}

func (f *fakeMarkers) CommitOffsets(group string, offsets []Offset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offsets == nil {
		f.offsets = map[string][]Offset{}
	}
	f.offsets[group] = append(f.offsets[group], offsets...)
	return nil
}

func (f *fakeMarkers) AllocatePID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPID++
	return f.nextPID, nil
}

// testPartitions is the number of __transaction_state partitions in tests.
const testPartitions = 3

// open opens a coordinator on dir's __transaction_state partitions (each
// call opens them afresh, so a reopen without Close sees what a crash
// would leave).
func open(t *testing.T, dir string, m *fakeMarkers, now func() time.Time) *Coordinator {
	t.Helper()
	return openOpts(t, dir, m, func(o *Options) { o.Now, o.ExpireEvery = now, 0 })
}

func wantErr(t *testing.T, what string, got, want *kerr.Error) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestCommitAbortAndFencing(t *testing.T) {
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, nil)
	defer c.Close()
	pid, epoch, e := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "init", e, nil)
	if pid != 1 || epoch != 0 {
		t.Fatalf("init: pid %d epoch %d", pid, epoch)
	}
	tp := TP{"t", 0}
	wantErr(t, "produce before add", c.Enrolled("a", pid, epoch, tp), kerr.InvalidTxnState)
	wantErr(t, "end with nothing ongoing", c.End("a", pid, epoch, true), kerr.InvalidTxnState)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "enrolled", c.Enrolled("a", pid, epoch, tp), nil)
	wantErr(t, "offsets before AddOffsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 5}}), kerr.InvalidTxnState)
	wantErr(t, "add group", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "offsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 5}}), nil)
	wantErr(t, "commit", c.End("a", pid, epoch, true), nil)
	wantErr(t, "commit retried", c.End("a", pid, epoch, true), nil)
	wantErr(t, "abort after commit", c.End("a", pid, epoch, false), kerr.InvalidTxnState)
	if len(m.markers) != 1 || !m.markers[0].commit || m.markers[0].pid != pid {
		t.Fatalf("markers %+v", m.markers)
	}
	if o := m.offsets["g"]; len(o) != 1 || o[0].Offset != 5 {
		t.Fatalf("group offsets %+v", m.offsets)
	}

	// An aborted transaction drops its staged offsets.
	wantErr(t, "add group 2", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "add 2", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "offsets 2", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 9}}), nil)
	wantErr(t, "abort", c.End("a", pid, epoch, false), nil)
	if len(m.markers) != 2 || m.markers[1].commit || len(m.offsets["g"]) != 1 {
		t.Fatalf("after abort: markers %+v offsets %+v", m.markers, m.offsets)
	}

	// A new InitProducerId bumps the epoch, aborts the open transaction
	// with the new epoch and fences the old one.
	wantErr(t, "add 3", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	pid2, epoch2, e := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "reinit", e, nil)
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("reinit: pid %d epoch %d", pid2, epoch2)
	}
	if last := m.markers[len(m.markers)-1]; last.commit || last.epoch != epoch2 {
		t.Fatalf("fencing abort marker %+v", last)
	}
	wantErr(t, "zombie add", c.AddPartitions("a", pid, epoch, []TP{tp}), kerr.ProducerFenced)
	wantErr(t, "zombie end", c.End("a", pid, epoch, true), kerr.ProducerFenced)
	wantErr(t, "zombie produce", c.Enrolled("a", pid, epoch, tp), kerr.InvalidProducerEpoch)
	wantErr(t, "unknown id", c.End("nope", pid, epoch, true), kerr.InvalidProducerIDMapping)
	wantErr(t, "bad timeout", func() *kerr.Error { _, _, e := c.InitProducerID("b", 0, -1, -1); return e }(), kerr.InvalidTransactionTimeout)
}

func TestRecoveryCompletesPreparedCommit(t *testing.T) {
	dir := t.TempDir()
	m := &fakeMarkers{}
	c := open(t, dir, m, nil)
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	tp := TP{"t", 1}
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "add group", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "offsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 7}}), nil)
	// The "crash": PrepareCommit is durable, the markers never get written.
	m.fail = errors.New("disk gone")
	wantErr(t, "end with failing markers (decided)", c.End("a", pid, epoch, true), nil)
	if st, _ := c.State("a"); st.Status != PrepareCommit {
		t.Fatalf("status %s, want PrepareCommit", st.Status)
	}
	c.Close()

	m2 := &fakeMarkers{}
	c2 := open(t, dir, m2, nil)
	defer c2.Close()
	if len(m2.markers) != 1 || !m2.markers[0].commit || !slices.Equal(m2.markers[0].parts, []TP{tp}) {
		t.Fatalf("markers on reopen %+v", m2.markers)
	}
	if o := m2.offsets["g"]; len(o) != 1 || o[0].Offset != 7 {
		t.Fatalf("offsets on reopen %+v", m2.offsets)
	}
	st, _ := c2.State("a")
	if st.Status != CompleteCommit || st.PID != pid || st.Epoch != epoch {
		t.Fatalf("state on reopen %+v", st)
	}
	// The producer carries on with the next transaction.
	wantErr(t, "retry end", c2.End("a", pid, epoch, true), nil)
	wantErr(t, "next add", c2.AddPartitions("a", pid, epoch, []TP{tp}), nil)
}

// TestRecoveryKeepsOngoing: a transaction open at a restart (kill -9: the
// coordinator is not closed) stays open with everything it had, its
// partitions, group and staged offsets, and its producer carries on and
// commits all of it, offsets staged before the restart included.
func TestRecoveryKeepsOngoing(t *testing.T) {
	dir := t.TempDir()
	m := &fakeMarkers{}
	c := open(t, dir, m, nil)
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	wantErr(t, "add group", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "offsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: TP{"in", 0}, Offset: 7}}), nil)
	c.Close() // the state log says Ongoing, as after a kill -9
	m2 := &fakeMarkers{}
	c2 := open(t, dir, m2, nil)
	defer c2.Close()
	if len(m2.markers) != 0 {
		t.Fatalf("markers on reopen %+v, want none: the transaction stays open", m2.markers)
	}
	if e, _ := c2.State("a"); e.Status != Ongoing || e.Epoch != epoch {
		t.Fatalf("after reopen: %+v", e)
	}
	wantErr(t, "produce after the restart", c2.Enrolled("a", pid, epoch, TP{"t", 0}), nil)
	wantErr(t, "add after the restart", c2.AddPartitions("a", pid, epoch, []TP{{"t", 1}}), nil)
	wantErr(t, "offsets after the restart", c2.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: TP{"in", 1}, Offset: 3}}), nil)
	wantErr(t, "commit after the restart", c2.End("a", pid, epoch, true), nil)
	if len(m2.markers) != 1 || !m2.markers[0].commit || len(m2.markers[0].parts) != 2 {
		t.Fatalf("markers %+v, want one commit over both partitions", m2.markers)
	}
	if o := m2.offsets["g"]; len(o) != 2 {
		t.Fatalf("offsets committed %+v, want both (one staged before the restart)", o)
	}
}

func TestTimeoutAborts(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, clock)
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	if n := c.AbortExpired(); n != 0 {
		t.Fatalf("aborted %d before the timeout", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if n := c.AbortExpired(); n != 1 {
		t.Fatalf("aborted %d after the timeout", n)
	}
	if len(m.markers) != 1 || m.markers[0].commit || m.markers[0].epoch != epoch+1 {
		t.Fatalf("markers %+v", m.markers)
	}
	wantErr(t, "end after timeout", c.End("a", pid, epoch, true), kerr.ProducerFenced)
	// KIP-588: the timed-out producer recovers with its old epoch.
	pid2, epoch2, e := c.InitProducerID("a", 1000, pid, epoch)
	wantErr(t, "recover after timeout", e, nil)
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("recovered as %d/%d", pid2, epoch2)
	}
	_, _, e = c.InitProducerID("a", 1000, pid, epoch)
	wantErr(t, "old epoch after recovery", e, kerr.ProducerFenced)
}

func TestConcurrentIDs(t *testing.T) {
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, nil)
	defer c.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("id-", i)
			pid, epoch, e := c.InitProducerID(id, 60000, -1, -1)
			if e != nil {
				t.Error(e)
				return
			}
			for j := 0; j < 5; j++ {
				if e := c.AddPartitions(id, pid, epoch, []TP{{"t", int32(j)}}); e != nil {
					t.Error(e)
				}
				if e := c.End(id, pid, epoch, j%2 == 0); e != nil {
					t.Error(e)
				}
			}
		}()
	}
	wg.Wait()
	if len(m.markers) != 40 {
		t.Fatalf("%d markers, want 40", len(m.markers))
	}
}
