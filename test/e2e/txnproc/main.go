// Command txnproc is the consume-transform-produce processor of the
// exactly-once e2e test (test/e2e/txn_eos_test.go): a franz-go
// GroupTransactSession that copies every record of the input topic to the
// output topic (same partition, value prefixed with "out-") in transactions
// that also commit the group's offsets. The test kills it with SIGKILL at
// random points and starts it again.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	var (
		brokers  = flag.String("brokers", "", "seed brokers, comma separated")
		txnID    = flag.String("txn-id", "", "transactional id")
		instance = flag.String("instance", "", "group instance id (static membership); empty: dynamic")
		grp      = flag.String("group", "", "consumer group")
		in       = flag.String("in", "", "input topic")
		out      = flag.String("out", "", "output topic")
		maxPoll  = flag.Int("max-poll", 500, "records per transaction at most")
		delay    = flag.Duration("txn-delay", 0, "pause inside each transaction, after producing (widens the window for kills)")
		verbose  = flag.Bool("v", false, "log franz-go at debug level")
	)
	flag.Parse()
	if *brokers == "" || *txnID == "" || *grp == "" || *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "txnproc: -brokers, -txn-id, -group, -in and -out are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	level := kgo.LogLevelInfo
	if *verbose {
		level = kgo.LogLevelDebug
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s txnproc %s: %s\n", time.Now().Format("15:04:05.000"), *txnID, fmt.Sprintf(format, args...))
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.TransactionalID(*txnID),
		kgo.TransactionTimeout(20 * time.Second),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string { return time.Now().Format("15:04:05.000 ") + *txnID + " " })),
	}

	// Fence the previous incarnation first: InitProducerId aborts the
	// transaction a killed process left open, so this one's OffsetFetch
	// (require_stable) does not wait for that transaction's timeout.
	fence, err := kgo.NewClient(opts...)
	if err != nil {
		logf("fence client: %v", err)
		os.Exit(1)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	pid, epoch, err := fence.ProducerID(fctx)
	cancel()
	fence.Close()
	if err != nil {
		logf("fence: init producer id: %v", err)
		os.Exit(1)
	}
	logf("fenced the previous incarnation: producer id %d epoch %d", pid, epoch)

	sopts := append(opts,
		kgo.ConsumerGroup(*grp),
		kgo.ConsumeTopics(*in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(*out),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second),
	)
	if *instance != "" {
		sopts = append(sopts, kgo.InstanceID(*instance))
	}
	sess, err := kgo.NewGroupTransactSession(sopts...)
	if err != nil {
		logf("session: %v", err)
		os.Exit(1)
	}
	defer sess.Close()

	var txns, records int
	for ctx.Err() == nil {
		fs := sess.PollRecords(ctx, *maxPoll)
		if fs.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fs.EachError(func(t string, p int32, err error) { logf("fetch error %s-%d: %v", t, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			logf("begin: %v", err)
			os.Exit(1)
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Key: r.Key, Value: append([]byte("out-"), r.Value...)},
				func(r *kgo.Record, err error) {
					if err != nil {
						logf("produce to partition %d: %v", r.Partition, err)
					}
				})
		})
		if *delay > 0 {
			time.Sleep(*delay)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			logf("end transaction: %v", err)
			os.Exit(1)
		}
		if committed {
			txns++
			records += n
		} else {
			logf("transaction of %d records aborted", n)
		}
	}
	logf("stopping after %d committed transactions, %d records", txns, records)
}
