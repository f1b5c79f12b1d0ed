// Command groups measures the consumer-group coordinator of a running
// broker: OffsetCommit throughput and latency, and classic-protocol
// rebalance time for groups of 1, 10 and 100 members. It starts nothing
// itself; point it at a broker with --bootstrap-servers. It prints a
// Markdown table.
//
//	go run ./bench/groups --bootstrap-servers localhost:9092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

type config struct {
	bootstrap  string
	topic      string
	partitions int
	duration   time.Duration
	committers int
	batch      int
	members    []int
	runs       int
}

func main() {
	var cfg config
	var members string
	flag.StringVar(&cfg.bootstrap, "bootstrap-servers", "localhost:9092", "broker address(es), comma separated")
	flag.StringVar(&cfg.topic, "topic", "groups-bench", "topic the commits and assignments name (created if missing)")
	flag.IntVar(&cfg.partitions, "partitions", 100, "partitions of the topic (and of a batched commit)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "duration of each commit benchmark")
	flag.IntVar(&cfg.committers, "committers", 8, "concurrent committers (one client each)")
	flag.IntVar(&cfg.batch, "batch", 100, "partitions per commit in the batched variant")
	flag.StringVar(&members, "members", "1,10,100", "group sizes for the rebalance benchmark")
	flag.IntVar(&cfg.runs, "runs", 5, "rebalances measured per group size (median and max reported)")
	flag.Parse()
	for _, s := range strings.Split(members, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad --members %q\n", members)
			os.Exit(2)
		}
		cfg.members = append(cfg.members, n)
	}
	if cfg.batch > cfg.partitions || cfg.committers < 1 || cfg.runs < 1 {
		fmt.Fprintln(os.Stderr, "need --batch <= --partitions, --committers >= 1, --runs >= 1")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "groups bench:", err)
		os.Exit(1)
	}
}

func newClient(cfg config) (*kgo.Client, error) {
	// The raw commits name their topic: at most OffsetCommit v9 (v10 names
	// topics by id).
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.OffsetCommit.Int16(), 9)
	return kgo.NewClient(kgo.SeedBrokers(strings.Split(cfg.bootstrap, ",")...), kgo.RequestRetries(0), kgo.MaxVersions(vs))
}

func run(cfg config) error {
	cl, err := newClient(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := ensureTopic(cl, cfg); err != nil {
		return err
	}
	var rows [][]string
	for _, batch := range []int{1, cfg.batch} {
		r, err := benchCommits(cfg, batch)
		if err != nil {
			return fmt.Errorf("commit benchmark (%d partitions): %w", batch, err)
		}
		rows = append(rows, []string{
			fmt.Sprintf("OffsetCommit, %d committers, %d partition(s) per commit", cfg.committers, batch),
			fmt.Sprintf("%.0f commits/s (%.0f offsets/s)", r.rate, r.rate*float64(batch)),
			fmt.Sprintf("p50 %s, p99 %s, max %s", ms(r.p50), ms(r.p99), ms(r.max)),
		})
	}
	for _, n := range cfg.members {
		var ds []time.Duration
		gens := 0
		for i := range cfg.runs {
			d, g, err := benchRebalance(cfg, n, i)
			if err != nil {
				return fmt.Errorf("rebalance benchmark (%d members): %w", n, err)
			}
			ds, gens = append(ds, d), max(gens, g)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		rows = append(rows, []string{
			fmt.Sprintf("Rebalance, %d classic member(s) joining at once", n),
			fmt.Sprintf("median %s", ms(ds[len(ds)/2])),
			fmt.Sprintf("max %s over %d runs, up to %d generation(s)", ms(ds[len(ds)-1]), len(ds), gens),
		})
	}
	fmt.Println("| benchmark | throughput / time | latency / spread |")
	fmt.Println("|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s |\n", r[0], r[1], r[2])
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ensureTopic(cl *kgo.Client, cfg config) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = cfg.topic, int32(cfg.partitions), 1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", cfg.topic, err)
	}
	return nil
}

type commitResult struct {
	rate          float64
	p50, p99, max time.Duration
}

// benchCommits runs cfg.committers committers for cfg.duration, each
// sending standalone commits (generation -1) of batch partitions to its own
// group, one commit in flight at a time.
func benchCommits(cfg config, batch int) (commitResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	var mu sync.Mutex
	var lats []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for c := range cfg.committers {
		cl, err := newClient(cfg)
		if err != nil {
			return commitResult{}, err
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			group := fmt.Sprintf("bench-commit-%s-%d-%d", stamp, batch, c)
			for off := int64(1); ctx.Err() == nil; off++ {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.Generation = group, -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = cfg.topic
				for i := range batch {
					rp := kmsg.NewOffsetCommitRequestTopicPartition()
					rp.Partition, rp.Offset = int32((c+i)%cfg.partitions), off
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
				t0 := time.Now()
				resp, err := req.RequestWith(ctx, cl)
				if ctx.Err() != nil {
					break
				}
				if err == nil {
					err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return commitResult{}, firstErr
	}
	if len(lats) == 0 {
		return commitResult{}, errors.New("no commit completed")
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return commitResult{
		rate: float64(len(lats)) / elapsed.Seconds(),
		p50:  lats[len(lats)/2], p99: lats[len(lats)*99/100], max: lats[len(lats)-1],
	}, nil
}
