// Command txn measures transactional produce throughput: one franz-go
// transactional producer commits transactions of N records each (acks=all,
// idempotent, 256-byte values by default) for a fixed time per N and prints a
// Markdown table of records/s, transactions/s and commit latency. The broker
// is given by --bootstrap-servers; start one with
//
//	go run ./cmd/chronik-server start --data-dir $(mktemp -d) --kafka-port 0 --metrics-port -1
//
// and read its address from the "chronik-server ready" log line.
//
// --offsets adds a consume-transform-produce step to each transaction: the
// producer also commits a consumer group offset in it (AddOffsetsToTxn and
// TxnOffsetCommit, as a processor does), timed with the commit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func main() {
	bootstrap := flag.String("bootstrap-servers", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "txn-bench", "topic (auto-created)")
	sizes := flag.String("records-per-txn", "10,100,1000", "comma-separated transaction sizes")
	duration := flag.Duration("duration", 10*time.Second, "measured time per size")
	valueSize := flag.Int("value-size", 256, "bytes per record value")
	offsets := flag.Bool("offsets", false, "also commit a group offset in each transaction (TxnOffsetCommit)")
	flag.Parse()
	fmt.Println("| records per transaction | records/s | transactions/s | commit p50 ms | commit p99 ms |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "txn: bad --records-per-txn entry %q\n", s)
			os.Exit(2)
		}
		if err := run(*bootstrap, *topic, n, *valueSize, *duration, *offsets); err != nil {
			fmt.Fprintln(os.Stderr, "txn:", err)
			os.Exit(1)
		}
	}
}

func run(bootstrap, topic string, n, valueSize int, d time.Duration, offsets bool) error {
	// The staged offsets name a topic that need not exist: at most
	// TxnOffsetCommit v5 (v6 names topics by id).
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 5)
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.TransactionalID(fmt.Sprintf("txn-bench-%d-%d", n, time.Now().UnixNano())),
		kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.MaxVersions(vs))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := context.Background()
	value := make([]byte, valueSize)
	var commits []time.Duration
	var records int
	start := time.Now()
	for time.Since(start) < d {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for i := 0; i < n; i++ {
			cl.Produce(ctx, &kgo.Record{Value: value}, nil)
		}
		t0 := time.Now()
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		if offsets {
			if err := commitOffset(ctx, cl, topic, int64(records+n)); err != nil {
				return err
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		commits = append(commits, time.Since(t0))
		records += n
	}
	el := time.Since(start).Seconds()
	sort.Slice(commits, func(i, j int) bool { return commits[i] < commits[j] })
	q := func(p float64) float64 { return float64(commits[int(p*float64(len(commits)-1))].Microseconds()) / 1000 }
	fmt.Printf("| %d | %.0f | %.0f | %.2f | %.2f |\n", n, float64(records)/el, float64(len(commits))/el, q(0.5), q(0.99))
	return nil
}

// commitOffset adds the bench's group to the open transaction and stages one
// offset for it, with the producer's current id and epoch.
func commitOffset(ctx context.Context, cl *kgo.Client, topic string, offset int64) error {
	const group = "txn-bench-group"
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	txnID := cl.OptValue(kgo.TransactionalID).(string)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	ar, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(ar.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("AddOffsetsToTxn: %w", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, group, id, epoch
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic + "-input"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("TxnOffsetCommit: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("TxnOffsetCommit: %w", err)
			}
		}
	}
	return nil
}
