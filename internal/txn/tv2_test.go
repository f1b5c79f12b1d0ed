package txn

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func wantProducer(t *testing.T, what string, pid int64, epoch int16, err *kerr.Error, wantPID int64, wantEpoch int16) {
	t.Helper()
	if err != nil || pid != wantPID || epoch != wantEpoch {
		t.Fatalf("%s: %d/%d %v, want %d/%d", what, pid, epoch, err, wantPID, wantEpoch)
	}
}

// TestEndV2BumpsEpoch: transaction version 2 ends bump the epoch, markers
// carry the new one, retries by the previous epoch are answered, an empty
// abort only bumps, and the old epoch is fenced.
func TestEndV2BumpsEpoch(t *testing.T) {
	m := &fakeMarkers{}
	dir := t.TempDir()
	c := open(t, dir, m, nil)
	defer func() { c.Close() }()
	pid, epoch, e := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "init", e, nil)
	tp := TP{"t", 0}

	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "add group", c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "offsets", c.CommitOffsets("a", pid, epoch, "g", []Offset{{TP: tp, Offset: 5}}), nil)
	p, ep, e := c.EndV2("a", pid, epoch, true)
	wantProducer(t, "commit", p, ep, e, pid, epoch+1)
	if len(m.markers) != 1 || !m.markers[0].commit || m.markers[0].epoch != epoch+1 {
		t.Fatalf("markers %+v: want one COMMIT at the bumped epoch", m.markers)
	}
	if o := m.offsets["g"]; len(o) != 1 || o[0].Offset != 5 {
		t.Fatalf("group offsets %+v", m.offsets)
	}
	p, ep, e = c.EndV2("a", pid, epoch, true)
	wantProducer(t, "commit retried by the old epoch", p, ep, e, pid, epoch+1)
	_, _, e = c.EndV2("a", pid, epoch, false)
	wantErr(t, "abort retried by the old epoch after a commit", e, kerr.InvalidTxnState)
	wantErr(t, "old epoch add", c.AddPartitions("a", pid, epoch, []TP{tp}), kerr.ProducerFenced)
	wantErr(t, "old epoch produce", c.Enrolled("a", pid, epoch, tp), kerr.InvalidProducerEpoch)
	if len(m.markers) != 1 {
		t.Fatalf("retries wrote markers: %+v", m.markers)
	}

	epoch++
	_, _, e = c.EndV2("a", pid, epoch, true)
	wantErr(t, "commit with nothing ongoing", e, kerr.InvalidTxnState)
	p, ep, e = c.EndV2("a", pid, epoch, false)
	wantProducer(t, "empty abort", p, ep, e, pid, epoch+1)
	if len(m.markers) != 1 {
		t.Fatalf("empty abort wrote markers: %+v", m.markers)
	}
	epoch++

	// Version 1 ends keep working for the same id (no bump).
	wantErr(t, "add v1", c.AddPartitions("a", pid, epoch, []TP{tp}), nil)
	wantErr(t, "end v1", c.End("a", pid, epoch, false), nil)
	if last := m.markers[len(m.markers)-1]; last.epoch != epoch || last.commit {
		t.Fatalf("v1 abort marker %+v", last)
	}

	// The epoch runs out: a new producer id, and the old id's open
	// transaction is closed with the old id at the last epoch.
	st := c.lookup("a", false)
	st.Epoch = maxEpoch
	st.mu.Unlock()
	wantErr(t, "add at the last epoch", c.AddPartitions("a", pid, maxEpoch, []TP{tp}), nil)
	p, ep, e = c.EndV2("a", pid, maxEpoch, true)
	if e != nil || p == pid || ep != 0 {
		t.Fatalf("end at the last epoch: %d/%d %v, want a new producer id at epoch 0", p, ep, e)
	}
	if last := m.markers[len(m.markers)-1]; last.pid != pid || last.epoch != maxEpoch+1 || !last.commit {
		t.Fatalf("marker at the last epoch %+v, want the old id at epoch %d", last, maxEpoch+1)
	}
	newPID := p
	p, ep, e = c.EndV2("a", pid, maxEpoch, true)
	wantProducer(t, "retry across the new producer id", p, ep, e, newPID, 0)

	// Prev survives a reopen: the retry is still answered.
	c.Close()
	c = open(t, dir, m, nil)
	p, ep, e = c.EndV2("a", pid, maxEpoch, true)
	wantProducer(t, "retry after reopen", p, ep, e, newPID, 0)
	wantErr(t, "new producer adds", c.AddPartitions("a", newPID, 0, []TP{tp}), nil)
	// InitProducerId fences the previous epoch's retries.
	p2, ep2, e := c.InitProducerID("a", 60000, -1, -1)
	wantProducer(t, "reinit", p2, ep2, e, newPID, 1)
	_, _, e = c.EndV2("a", pid, maxEpoch, true)
	wantErr(t, "retry after InitProducerId", e, kerr.InvalidProducerIDMapping)
}

// TestEndV2FailedMarkersRecover: a version 2 commit whose markers fail stays
// PrepareCommit with the bumped epoch; the retry by the previous epoch
// finishes it with the same markers.
func TestEndV2FailedMarkersRecover(t *testing.T) {
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, nil)
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	m.fail = errors.New("disk gone")
	p, ep, e := c.EndV2("a", pid, epoch, true) // decided: answered
	wantProducer(t, "commit with failing markers", p, ep, e, pid, epoch+1)
	if _, _, e := c.EndV2("a", pid, epoch, true); e != kerr.ConcurrentTransactions {
		t.Fatalf("retried commit while the markers fail: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	m.fail = nil
	p, ep, e = c.EndV2("a", pid, epoch, true)
	wantProducer(t, "retried commit", p, ep, e, pid, epoch+1)
	if len(m.markers) != 1 || m.markers[0].epoch != epoch+1 {
		t.Fatalf("markers %+v", m.markers)
	}
	if st, _ := c.State("a"); st.Status != CompleteCommit {
		t.Fatalf("state %s", st.Status)
	}
}

// TestTimeoutAtLastEpoch: a transaction timing out at the last epoch is
// still aborted and its producer fenced: the bump issues a new producer id
// and the markers close the old one's transaction at epoch 32767.
func TestTimeoutAtLastEpoch(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := &fakeMarkers{}
	c := open(t, t.TempDir(), m, clock)
	defer c.Close()
	pid, _, _ := c.InitProducerID("a", 1000, -1, -1)
	st := c.lookup("a", false)
	st.Epoch = maxEpoch
	st.mu.Unlock()
	wantErr(t, "add", c.AddPartitions("a", pid, maxEpoch, []TP{{"t", 0}}), nil)
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if n := c.AbortExpired(); n != 1 {
		t.Fatalf("aborted %d at the last epoch", n)
	}
	if len(m.markers) != 1 || m.markers[0].commit || m.markers[0].pid != pid || m.markers[0].epoch != maxEpoch+1 {
		t.Fatalf("markers %+v, want one ABORT for the old id at epoch %d", m.markers, maxEpoch+1)
	}
	got, _ := c.State("a")
	if got.PID == pid || got.Epoch != 0 || got.Status != CompleteAbort || got.Marker != nil {
		t.Fatalf("state after the abort %+v", got)
	}
	wantErr(t, "old producer", c.AddPartitions("a", pid, maxEpoch, []TP{{"t", 0}}), kerr.InvalidProducerIDMapping)
}
