package e2e

// Producer-id expiration (--producer-id-expiration-ms) against real
// idempotent clients: a producer whose state the broker forgot while it was
// idle keeps producing (the broker answers its next batch
// UNKNOWN_PRODUCER_ID and the client resets its sequence, KIP-360), and no
// record is lost or duplicated.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProducerIDExpiry(t *testing.T) {
	b := StartBroker(t, "--producer-id-expiration-ms", "1s", "--log-retention-check-interval-ms", "200ms")
	adm := clientsAdmin(t, b)
	ctx := context.Background()

	// producers returns the producer ids partition 0 of topic keeps state for.
	producers := func(topic string) map[int64]kadm.DescribedProducer {
		t.Helper()
		ds, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatalf("DescribeProducers: %v", err)
		}
		dp := ds[topic].Partitions[0]
		if dp.Err != nil {
			t.Fatalf("DescribeProducers %s-0: %v", topic, dp.Err)
		}
		return dp.ActiveProducers
	}
	waitForgotten := func(topic string) {
		t.Helper()
		CheckFor(t, 15*time.Second, func() error {
			if ps := producers(topic); len(ps) != 0 {
				return fmt.Errorf("%d producers still remembered", len(ps))
			}
			return nil
		})
	}

	t.Run("franz-go", func(t *testing.T) {
		const topic, tag = "pidexp-kgo", "kgopause"
		clientsCreateTopic(t, adm, topic, 1, nil)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		produce := func(from, n int) {
			t.Helper()
			for i := from; i < from+n; i++ {
				r := &kgo.Record{Key: []byte(clientsKey(tag, i)), Value: []byte(clientsValue(tag, i)), Partition: 0}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
		}
		produce(0, 10)
		if n := len(producers(topic)); n != 1 {
			t.Fatalf("%d producers after the first records, want 1", n)
		}
		waitForgotten(topic)
		produce(10, 10) // the same producer id, continuing its sequence
		got := clientsConsumeKgo(t, b, topic, 20, 20*time.Second)
		clientsCheckDataset(t, "franz-go across the expiry", got, tag, 20, noHeaders)
		if n := len(producers(topic)); n != 1 {
			t.Fatalf("%d producers after producing again, want 1", n)
		}
		waitForgotten(topic) // before the next subtest counts expiries
	})

	t.Run("librdkafka", func(t *testing.T) {
		const topic, tag = "pidexp-rdk", "rdkpause"
		clientsCreateTopic(t, adm, topic, 1, nil)
		var sum struct {
			Delivered int      `json:"delivered"`
			Errors    []string `json:"errors"`
		}
		expiries := func() int { return strings.Count(b.Logs(), `"msg":"producer state expired"`) }
		before := expiries()
		// Pause well past the expiry plus a sweep.
		clientsRunPython(t, 90*time.Second, false, &sum, "idempotent_pause.py", b.Addr, topic,
			"--tag", tag, "--first", "10", "--second", "10", "--pause", strconv.Itoa(4))
		// The state of the first ten records expired during the pause
		// (the second ten are too recent to have expired yet).
		if expiries() == before {
			t.Fatalf("no producer state expired while librdkafka paused")
		}
		if sum.Delivered != 20 || len(sum.Errors) != 0 {
			t.Fatalf("librdkafka: %+v", sum)
		}
		got := clientsConsumeKgo(t, b, topic, 20, 20*time.Second)
		clientsCheckDataset(t, "librdkafka across the expiry", got, tag, 20, noHeaders)
	})
	if !strings.Contains(b.Logs(), `"msg":"producer state expired"`) {
		t.Fatalf("no expiry in the broker log")
	}
}

func noHeaders(int) [][]string { return nil }
