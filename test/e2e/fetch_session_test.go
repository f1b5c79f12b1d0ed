package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sessionsCreated counts "fetch session created" lines in the broker log.
func sessionsCreated(b *Broker) int {
	return strings.Count(b.Logs(), "fetch session created")
}

// TestFetchSessionsFranzGo: a franz-go consumer uses incremental fetch
// sessions (it always does from Fetch v7); it sees every record exactly
// once, in order per partition, while more are produced during the
// consume, and it keeps one session instead of starting one per fetch.
func TestFetchSessionsFranzGo(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	const topic, parts, perRound = "sessions", 4, 200
	clientsCreateTopic(t, adm, topic, parts, nil)
	prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produce := func(round int) {
		for i := 0; i < perRound; i++ {
			prod.Produce(context.Background(), kgo.StringRecord(fmt.Sprintf("%d-%d", round, i)), nil)
		}
		if err := prod.Flush(Ctx(t, 30*time.Second)); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	produce(0)
	cons := b.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx := Ctx(t, 60*time.Second)
	seen := map[string]bool{}
	next := map[int32]int64{}
	rounds := 1
	for len(seen) < 3*perRound {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(seen), 3*perRound)
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			if seen[string(r.Value)] {
				t.Fatalf("record %s seen twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
		if len(seen) >= rounds*perRound && rounds < 3 {
			produce(rounds) // new data arrives while the session is idle-polling
			rounds++
		}
	}
	created := sessionsCreated(b)
	t.Logf("franz-go created %d fetch sessions for %d records", created, len(seen))
	if created == 0 {
		t.Fatal("franz-go consumed without a fetch session")
	}
	// One session per broker connection; a few more would be a reset, one
	// per fetch would mean incremental fetches fail.
	if created > 3 {
		t.Errorf("%d fetch sessions created for one consumer", created)
	}
	if strings.Contains(b.Logs(), "FETCH_SESSION") {
		t.Error("broker log mentions fetch session errors")
	}
}

// TestFetchSessionsKcat: librdkafka consumes correctly whether or not it
// uses sessions. (librdkafka 2.0.2, Debian's kcat, sends sessionless full
// fetches: SessionEpoch -1.)
func TestFetchSessionsKcat(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	clientsCreateTopic(t, adm, "kc", 2, nil)
	var lines []string
	for i := 0; i < 50; i++ {
		lines = append(lines, fmt.Sprintf("k%d:v%d", i, i))
	}
	kcatProduce(t, b, "kc", lines)
	before := sessionsCreated(b)
	recs := kcatConsume(t, b, "kc")
	if len(recs) != 50 {
		t.Fatalf("kcat consumed %d records, want 50", len(recs))
	}
	t.Logf("kcat created %d fetch sessions", sessionsCreated(b)-before)
}
