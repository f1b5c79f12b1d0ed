package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProducerExpiry: producer.id.expiration.ms forgets a producer that has
// not written for that long, keeps one that wrote recently and one with a
// transaction open in the partition, and keeps the age across a clean
// restart (Seen is in the snapshot) while state rebuilt from the log after a
// crash counts as seen at the restart. A forgotten producer continuing its
// sequence gets UNKNOWN_PRODUCER_ID; starting again at 0 works.
func TestProducerExpiry(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	idle := initPID(f, -1, -1, nil).ProducerID
	busy := initPID(f, -1, -1, nil).ProducerID
	inTxn := initPID(f, -1, -1, nil).ProducerID
	for _, pid := range []int64{idle, busy, inTxn} {
		for seq := int32(0); seq < 6; seq += 2 {
			if _, code := f.idem("t", pid, 0, seq, 2); code != 0 {
				t.Fatalf("producer %d seq %d: %v", pid, seq, kerr.ErrorForCode(code))
			}
		}
	}
	p := f.b.partition("t", 0)
	age := func(pid int64, d time.Duration) {
		p.mu.Lock()
		p.producers[pid].Seen -= d.Milliseconds()
		p.mu.Unlock()
	}
	age(idle, 2*time.Hour)
	age(inTxn, 2*time.Hour)
	age(busy, 30*time.Minute)
	p.mu.Lock()
	if p.ongoing == nil {
		p.ongoing = map[int64]int64{}
	}
	p.ongoing[inTxn] = 0 // as if its transaction were open here
	p.mu.Unlock()

	// Survives a clean restart with its age.
	f = f.reopen(false)
	p = f.b.partition("t", 0)
	p.mu.Lock()
	delete(p.ongoing, inTxn) // the fixture wrote no real transaction; re-mark it
	p.ongoing[inTxn] = 0
	p.mu.Unlock()

	f.b.opts.ProducerIDExpiration = time.Hour
	f.b.sweepProducers(time.Now())
	p.mu.Lock()
	_, idleKept := p.producers[idle]
	_, busyKept := p.producers[busy]
	_, txnKept := p.producers[inTxn]
	p.mu.Unlock()
	if idleKept || !busyKept || !txnKept {
		t.Fatalf("after the sweep: idle kept %v (want false), busy kept %v, in-transaction kept %v (want true)", idleKept, busyKept, txnKept)
	}
	if infos := p.activeProducers(); len(infos) != 2 {
		t.Fatalf("DescribeProducers state: %d producers, want 2", len(infos))
	}
	if _, code := f.idem("t", idle, 0, 6, 2); code != kerr.UnknownProducerID.Code {
		t.Fatalf("expired producer continuing at seq 6: %v, want UNKNOWN_PRODUCER_ID", kerr.ErrorForCode(code))
	}
	if _, code := f.idem("t", busy, 0, 6, 2); code != 0 {
		t.Fatalf("kept producer continuing at seq 6: %v", kerr.ErrorForCode(code))
	}
	if _, code := f.idem("t", idle, 1, 0, 2); code != 0 {
		t.Fatalf("expired producer at a new epoch, seq 0: %v", kerr.ErrorForCode(code))
	}

	// After a crash the rebuilt state counts as seen now: nothing expires
	// at once, even the producers that were already old.
	age(busy, 2*time.Hour)
	f = f.reopen(true)
	f.b.opts.ProducerIDExpiration = time.Hour
	f.b.sweepProducers(time.Now())
	if infos := f.b.partition("t", 0).activeProducers(); len(infos) != 3 {
		t.Fatalf("after a crash and a sweep: %d producers, want all 3 rebuilt from the log", len(infos))
	}
}
