package txn

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestRecoveryAbortFencesProducer: a transaction found Ongoing in a record
// written by an older version (whose staged offsets were only in memory) is
// aborted at the restart, and a producer that lives through the restart
// must not be able to carry on the transaction the restart aborted. An
// abort that kept the epoch let the producer's next AddPartitionsToTxn
// silently start a new transaction and its EndTxn commit the records sent
// after the restart while those sent before were aborted: a torn
// transaction (and, in consume-transform-produce, offsets committed for
// output that was lost).
func TestRecoveryAbortFencesProducer(t *testing.T) {
	dir := t.TempDir()
	m := &fakeMarkers{}
	c := open(t, dir, m, nil)
	pid, epoch, e := c.InitProducerID("a", 60000, -1, -1)
	wantErr(t, "init", e, nil)
	wantErr(t, "add before the restart", c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	// Rewrite the last record as an older version wrote it.
	old, _ := c.State("a")
	old.OffsetsLogged = false
	raw, err := encodeValue(&old)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.appendRecord("a", raw); err != nil {
		t.Fatal(err)
	}
	c.Close() // the state log says Ongoing, as after a kill -9

	m2 := &fakeMarkers{}
	c2 := open(t, dir, m2, nil)
	defer c2.Close()
	if len(m2.markers) != 1 || m2.markers[0].commit || m2.markers[0].epoch != epoch+1 {
		t.Fatalf("markers on reopen %+v, want one abort with epoch %d", m2.markers, epoch+1)
	}
	// The producer does not know: it adds another partition, a group,
	// produces, and commits. All of it is fenced.
	wantErr(t, "add after the restart", c2.AddPartitions("a", pid, epoch, []TP{{"t", 1}}), kerr.ProducerFenced)
	wantErr(t, "add offsets after the restart", c2.AddGroup("a", pid, epoch, "g"), kerr.ProducerFenced)
	wantErr(t, "produce after the restart", c2.Enrolled("a", pid, epoch, TP{"t", 0}), kerr.InvalidProducerEpoch)
	wantErr(t, "commit after the restart", c2.End("a", pid, epoch, true), kerr.ProducerFenced)
	if len(m2.markers) != 1 || len(m2.offsets) != 0 {
		t.Fatalf("the fenced producer wrote markers %+v offsets %+v", m2.markers, m2.offsets)
	}
	// KIP-588: it recovers with the epoch it had, as after a timeout.
	pid2, epoch2, e := c2.InitProducerID("a", 60000, pid, epoch)
	wantErr(t, "recover", e, nil)
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("recovered as %d/%d, want %d/%d", pid2, epoch2, pid, epoch+2)
	}
	wantErr(t, "add after recovery", c2.AddPartitions("a", pid2, epoch2, []TP{{"t", 1}}), nil)
	wantErr(t, "commit after recovery", c2.End("a", pid2, epoch2, true), nil)
}
