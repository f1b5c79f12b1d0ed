// Command txn measures transactional produce throughput: one franz-go
// transactional producer commits transactions of N records each (acks=all,
// idempotent, 256-byte values by default) for a fixed time per N and prints a
// Markdown table of records/s, transactions/s and commit latency. The broker
// is given by --bootstrap-servers; start one with
//
//	go run ./cmd/chronik-server start --data-dir $(mktemp -d) --kafka-port 0 --metrics-port -1
//
// and read its address from the "chronik-server ready" log line.
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

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	bootstrap := flag.String("bootstrap-servers", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "txn-bench", "topic (auto-created)")
	sizes := flag.String("records-per-txn", "10,100,1000", "comma-separated transaction sizes")
	duration := flag.Duration("duration", 10*time.Second, "measured time per size")
	valueSize := flag.Int("value-size", 256, "bytes per record value")
	flag.Parse()
	fmt.Println("| records per transaction | records/s | transactions/s | commit p50 ms | commit p99 ms |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "txn: bad --records-per-txn entry %q\n", s)
			os.Exit(2)
		}
		if err := run(*bootstrap, *topic, n, *valueSize, *duration); err != nil {
			fmt.Fprintln(os.Stderr, "txn:", err)
			os.Exit(1)
		}
	}
}

func run(bootstrap, topic string, n, valueSize int, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.TransactionalID(fmt.Sprintf("txn-bench-%d-%d", n, time.Now().UnixNano())),
		kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
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
