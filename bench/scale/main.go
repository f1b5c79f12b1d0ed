// Command scale is bench/scale.sh's Kafka client: it creates the topics of
// a many-partition run, waits for a (re)started broker to answer, lists high
// watermarks and consumes everything back, checking each partition against
// the acknowledged counts chronik-bench wrote (--acked-output).
//
//	scale create  -b ADDR -topics a,b,... -partitions N   one CreateTopics per topic, timed
//	scale wait    -b ADDR [-topics LIST] [-timeout 10m]   until Metadata lists every partition with a leader
//	scale offsets -b ADDR -topics LIST [-acked F1,F2]     sum of high watermarks; acked <= watermark per partition
//	scale consume -b ADDR -topics LIST [-acked F1,F2]     read every partition to its watermark, count, check
//
// Every subcommand prints one line of key=value pairs (for the script) and
// exits 1 when a check fails or a bound (-timeout) is reached.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	bootstrap  string
	topics     []string
	partitions int
	acked      []string
	timeout    time.Duration
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scale create|wait|offsets|consume -b ADDR -topics LIST [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("scale "+cmd, flag.ExitOnError)
	var o options
	var topics, acked string
	fs.StringVar(&o.bootstrap, "b", "127.0.0.1:9092", "broker address")
	fs.StringVar(&topics, "topics", "", "comma separated topics")
	fs.IntVar(&o.partitions, "partitions", 1, "create: partitions per topic")
	fs.StringVar(&acked, "acked", "", "comma separated chronik-bench --acked-output files")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole subcommand")
	fs.Parse(os.Args[2:])
	o.topics = split(topics)
	o.acked = split(acked)
	if len(o.topics) == 0 && cmd != "wait" { // wait without topics: the first Metadata answer
		fmt.Fprintln(os.Stderr, "scale: -topics is empty")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var err error
	switch cmd {
	case "create":
		err = create(ctx, o)
	case "wait":
		err = wait(ctx, o)
	case "offsets":
		err = offsets(ctx, o)
	case "consume":
		err = consume(ctx, o)
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func client(o options, extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(o.bootstrap),
		kgo.ClientID("chronik-scale"),
		// Creating thousands of partitions takes minutes on a slow disk:
		// let a CreateTopics request wait for its answer.
		kgo.RequestTimeoutOverhead(5 * time.Minute),
		kgo.RetryTimeout(30 * time.Second),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32((5 * time.Minute).Milliseconds()))
	return cl, adm, nil
}

// create makes each topic with one CreateTopics request (so no single request
// holds the broker for the whole run), then waits until Metadata lists them.
func create(ctx context.Context, o options) error {
	cl, adm, err := client(o)
	if err != nil {
		return err
	}
	defer cl.Close()
	t0 := time.Now()
	var each []time.Duration // per topic: does creating get slower as partitions add up?
	for _, t := range o.topics {
		t1 := time.Now()
		resp, err := adm.CreateTopic(ctx, int32(o.partitions), 1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
		each = append(each, time.Since(t1))
	}
	created := time.Since(t0)
	n, err := ready(ctx, adm, o.topics)
	if err != nil {
		return err
	}
	fmt.Printf("create_s=%.2f first_topic_s=%.2f last_topic_s=%.2f slowest_topic_s=%.2f ready_s=%.2f partitions=%d\n",
		created.Seconds(), each[0].Seconds(), each[len(each)-1].Seconds(), slices.Max(each).Seconds(),
		time.Since(t0).Seconds(), n)
	return nil
}

// ready polls Metadata until every partition of topics has a leader and
// returns the partition count.
func ready(ctx context.Context, adm *kadm.Client, topics []string) (int, error) {
	var last error
	for {
		n, err := leaders(ctx, adm, topics)
		if err == nil {
			return n, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func leaders(ctx context.Context, adm *kadm.Client, topics []string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(rctx, topics...)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || td.Err != nil {
			return 0, fmt.Errorf("topic %s: missing or %v", t, td.Err)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return 0, fmt.Errorf("%s-%d: leader %d, %v", t, p.Partition, p.Leader, p.Err)
			}
			n++
		}
	}
	return n, nil
}

// wait is "until the broker answers": the first Metadata answer listing every
// partition with a leader. The script times it from the broker's start.
func wait(ctx context.Context, o options) error {
	cl, adm, err := client(o, kgo.RetryTimeout(o.timeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	t0 := time.Now()
	n, err := ready(ctx, adm, o.topics)
	if err != nil {
		return err
	}
	fmt.Printf("answered_s=%.2f partitions=%d\n", time.Since(t0).Seconds(), n)
	return nil
}

type tp struct {
	topic     string
	partition int32
}

// readAcked sums the "topic partition count" lines of the files.
func readAcked(files []string) (map[tp]int64, int64, error) {
	out := map[tp]int64{}
	var total int64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, 0, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 {
				fh.Close()
				return nil, 0, fmt.Errorf("%s: bad line %q", f, sc.Text())
			}
			p, err1 := strconv.ParseInt(fields[1], 10, 32)
			n, err2 := strconv.ParseInt(fields[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				fh.Close()
				return nil, 0, fmt.Errorf("%s: %w", f, err)
			}
			out[tp{fields[0], int32(p)}] += n
			total += n
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// watermarks lists the log start and end offsets of every partition.
func watermarks(ctx context.Context, adm *kadm.Client, topics []string) (start, end map[tp]int64, err error) {
	s, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = s.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	e, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = e.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	start, end = map[tp]int64{}, map[tp]int64{}
	s.Each(func(l kadm.ListedOffset) { start[tp{l.Topic, l.Partition}] = l.Offset })
	e.Each(func(l kadm.ListedOffset) { end[tp{l.Topic, l.Partition}] = l.Offset })
	return start, end, nil
}

// checkAcked reports the partitions where fewer records are in the log
// (have) than were acknowledged: lost acknowledged records.
func checkAcked(acked, have map[tp]int64) (bad int, lost int64, first string) {
	for k, n := range acked {
		if h := have[k]; h < n {
			bad++
			lost += n - h
			if first == "" {
				first = fmt.Sprintf("%s-%d: %d acknowledged, %d in the log", k.topic, k.partition, n, h)
			}
		}
	}
	return bad, lost, first
}

// offsets sums the high watermarks and checks every acknowledged count.
func offsets(ctx context.Context, o options) error {
	cl, adm, err := client(o)
	if err != nil {
		return err
	}
	defer cl.Close()
	acked, ackedTotal, err := readAcked(o.acked)
	if err != nil {
		return err
	}
	start, end, err := watermarks(ctx, adm, o.topics)
	if err != nil {
		return err
	}
	have := map[tp]int64{}
	var total int64
	for k, e := range end {
		have[k] = e - start[k]
		total += e - start[k]
	}
	bad, lost, first := checkAcked(acked, have)
	fmt.Printf("partitions=%d records=%d acked=%d short_partitions=%d lost=%d\n", len(end), total, ackedTotal, bad, lost)
	if bad > 0 {
		return fmt.Errorf("acknowledged records missing in %d partitions (first: %s)", bad, first)
	}
	return nil
}

// consume reads every partition from its log start to the end offset listed
// first, counting records, and checks the counts against the offsets and
// the acknowledged counts.
func consume(ctx context.Context, o options) error {
	admCl, adm, err := client(o)
	if err != nil {
		return err
	}
	start, end, err := watermarks(ctx, adm, o.topics)
	admCl.Close()
	if err != nil {
		return err
	}
	assign := map[string]map[int32]kgo.Offset{}
	left := map[tp]int64{} // records still to read
	var want int64
	for k, e := range end {
		if n := e - start[k]; n > 0 {
			if assign[k.topic] == nil {
				assign[k.topic] = map[int32]kgo.Offset{}
			}
			assign[k.topic][k.partition] = kgo.NewOffset().At(start[k])
			left[k] = n
			want += n
		}
	}
	cl, _, err := client(o, kgo.ConsumePartitions(assign), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	got := map[tp]int64{}
	var total int64
	beyond := 0
	t0 := time.Now()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d records read, %d partitions unfinished: %w", total, want, len(left), ctx.Err())
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s-%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			if r.Offset >= end[k] {
				beyond++ // produced after the listing (none expected)
				return
			}
			got[k]++
			total++
			if left[k]--; left[k] == 0 {
				delete(left, k)
			}
		})
	}
	elapsed := time.Since(t0)
	acked, ackedTotal, err := readAcked(o.acked)
	if err != nil {
		return err
	}
	bad, lost, first := checkAcked(acked, got)
	gaps := 0
	for k, e := range end {
		if got[k] != e-start[k] {
			gaps++
		}
	}
	fmt.Printf("partitions=%d consumed=%d offsets=%d acked=%d short_partitions=%d lost=%d count_mismatch=%d consume_s=%.2f msg_per_s=%.0f\n",
		len(end), total, want, ackedTotal, bad, lost, gaps, elapsed.Seconds(), float64(total)/elapsed.Seconds())
	if bad > 0 || gaps > 0 {
		return fmt.Errorf("%d partitions short of acknowledged (first: %s), %d partitions whose count differs from their offsets", bad, first, gaps)
	}
	return nil
}
