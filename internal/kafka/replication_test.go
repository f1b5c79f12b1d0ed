package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// durableRecords appends n records to p and makes them durable.
func durableRecords(t *testing.T, p *partition.Partition, n int) {
	t.Helper()
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), Value: []byte("v")}
	}
	if _, err := p.Append(storage.EncodeBatch(time.Now().UnixMilli(), recs)); err != nil {
		t.Fatal(err)
	}
	end, err := p.Sync()
	if err != nil {
		t.Fatal(err)
	}
	p.MarkDurable(end)
}

// The leader's view of its followers: the high watermark is the smallest
// durable end of the in-sync replicas and never moves back; a follower not
// caught up for replica.lag.time.max.ms leaves the set (the high watermark
// then follows the others), one that catches up with the high watermark
// joins again, and with no follower in sync it is the leader's durable end.
func TestLeaderState(t *testing.T) {
	p, err := partition.Open(t.TempDir(), partition.Options{Topic: "t", TopicID: metadata.TopicID{1}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	durableRecords(t, p, 4) // before the leader state: the floor
	r := &replication{lagMax: time.Minute, log: slog.New(slog.DiscardHandler)}
	ls := r.state(p, []int32{1, 2, 3})
	hw := func(want int64) {
		t.Helper()
		if got := p.HighWatermark(); got != want {
			t.Fatalf("high watermark %d, want %d", got, want)
		}
	}
	hw(4)
	if ls.inSync() != 3 {
		t.Fatalf("in sync %d at start, want 3", ls.inSync())
	}
	durableRecords(t, p, 6) // durable end 10
	hw(4)
	if r.fetched(ls, 4, 10) {
		t.Fatal("a broker that is not a follower counted")
	}
	r.fetched(ls, 2, 2) // behind the floor: nothing moves back
	hw(4)
	r.fetched(ls, 2, 10)
	hw(4) // broker 3 has not fetched
	moved := r.moved.wait()
	r.fetched(ls, 3, 7)
	hw(7)
	select {
	case <-moved:
	default:
		t.Fatal("waiters not woken when the high watermark moved")
	}

	// Broker 3 stops fetching: after lagMax it leaves the set.
	r.shrink(time.Now().Add(30 * time.Second))
	if ls.inSync() != 3 {
		t.Fatal("shrunk before replica.lag.time.max.ms")
	}
	// A minute later neither has fetched: both leave, and the leader's
	// durable end is the high watermark; broker 2, caught up, joins
	// again at its next fetch.
	r.shrink(time.Now().Add(61 * time.Second))
	if n := ls.inSync(); n != 1 {
		t.Fatalf("in sync %d after a minute without fetches", n)
	}
	hw(10)
	r.fetched(ls, 2, 10)
	if n := ls.inSync(); n != 2 {
		t.Fatalf("in sync %d after broker 2 caught up", n)
	}
	hw(10)

	// Broker 3 catches up with the high watermark: it joins again, and
	// the high watermark waits for it once more.
	durableRecords(t, p, 5) // durable end 15
	r.fetched(ls, 3, 10)
	if ls.inSync() != 3 {
		t.Fatalf("in sync %d after broker 3 caught up with the high watermark", ls.inSync())
	}
	r.fetched(ls, 2, 15)
	hw(10)
	r.fetched(ls, 3, 15)
	hw(15)

	// Nobody fetches any more: both leave, and the leader alone makes
	// the high watermark.
	r.shrink(time.Now().Add(2 * time.Minute))
	if ls.inSync() != 1 {
		t.Fatalf("in sync %d with every follower silent", ls.inSync())
	}
	durableRecords(t, p, 5)
	hw(20)
}

// A metadata write the quorum could not take now (its leader lost on the
// way, or none elected) is answered with a code clients retry, not as a
// storage failure.
func TestQuorumUnavailableIsRetriable(t *testing.T) {
	err := fmt.Errorf("%w: leader 3 did not answer: EOF", metadata.ErrUnavailable)
	if c := createErrCode(err); c != kerr.RequestTimedOut.Code {
		t.Fatalf("create: %v", kerr.ErrorForCode(c))
	}
	if c := persistErrCode(err); c != kerr.RequestTimedOut.Code {
		t.Fatalf("configs: %v", kerr.ErrorForCode(c))
	}
	if c := persistErrCode(errors.New("disk gone")); c != kerr.KafkaStorageError.Code {
		t.Fatalf("other failures: %v", kerr.ErrorForCode(c))
	}
}
