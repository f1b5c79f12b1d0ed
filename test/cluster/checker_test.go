package cluster_test

// The checker: producers (franz-go and librdkafka) with unique record ids against a cluster while
// faults are injected, then the invariants Kafka users rely on, checked on
// what was acknowledged and what was read:
//
//   - every acknowledged record is in the final log exactly once, at the
//     partition and offset its acknowledgement named (an offset is never
//     reused for another record, nothing acknowledged is lost);
//   - no record id appears twice anywhere (idempotent producers);
//   - what a read_committed group consumer read while the faults ran is at
//     its offset in the final log (a prefix, offset for offset, id for id);
//   - a partition's high watermark, as its leader answers ListOffsets, never
//     moves back.
//
// With replication factor 3 (TestCheckerReplicated, CHRONIK_CHECKER_RF)
// each follower's log must also be a byte-identical prefix of its
// leader's. Until leaders fail over (issue 14, slice 4) a killed leader's
// partitions are unavailable until it returns: the faults test that
// nothing acknowledged is lost across kill -9, SIGSTOP and a cut network,
// not availability. TestChecker and TestCheckerReplicated are the quick
// forms run by make test; scripts/checker.sh runs the long form
// (CHRONIK_CHECKER_DURATION, CHRONIK_CHECKER_RUNS, CHRONIK_CHECKER_RF) and
// prints the counts for bench/RESULTS.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type ackedRecord struct {
	partition int32
	offset    int64
	id        string
}

func checkerEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestChecker(t *testing.T) {
	runs := checkerEnv("CHRONIK_CHECKER_RUNS", 1)
	dur := time.Duration(checkerEnv("CHRONIK_CHECKER_DURATION", 20)) * time.Second
	rf := checkerEnv("CHRONIK_CHECKER_RF", 1)
	var total checkerCounts
	for run := range runs {
		c := runChecker(t, run, dur, rf)
		total.add(c)
		t.Logf("run %d: %s", run+1, c)
	}
	t.Logf("CHECKER TOTAL runs=%d rf=%d %s", runs, rf, total)
}

// TestCheckerReplicated is the checker's quick form with every partition
// on all three brokers (replication factor 3): besides everything
// TestChecker checks, each follower's log must be a byte-identical prefix of
// its leader's.
func TestCheckerReplicated(t *testing.T) {
	c := runChecker(t, 0, 15*time.Second, 3)
	t.Logf("run 1 (replication factor 3): %s", c)
}

type checkerCounts struct {
	faults, acked, librdkafka, failed, consumed, hwChecks int
	lost, duplicated, moved, hwBack                       int
}

func (c *checkerCounts) add(o checkerCounts) {
	c.faults += o.faults
	c.acked += o.acked
	c.librdkafka += o.librdkafka
	c.failed += o.failed
	c.consumed += o.consumed
	c.hwChecks += o.hwChecks
	c.lost += o.lost
	c.duplicated += o.duplicated
	c.moved += o.moved
	c.hwBack += o.hwBack
}

func (c checkerCounts) String() string {
	return fmt.Sprintf("faults=%d acknowledged=%d (librdkafka %d) failed=%d consumed_during=%d hw_checks=%d lost=%d duplicated=%d offset_reused=%d hw_moved_back=%d",
		c.faults, c.acked, c.librdkafka, c.failed, c.consumed, c.hwChecks, c.lost, c.duplicated, c.moved, c.hwBack)
}

func runChecker(t *testing.T, run int, dur time.Duration, rf int) checkerCounts {
	const parts = 6
	var counts checkerCounts
	c := cluster.Start(t, 3, "--broker-session-timeout-ms", "3000", "--broker-heartbeat-interval-ms", "500",
		"--replica-lag-time-max-ms", "2000")
	seeds := c.Bootstrap()
	ctx := cluster.Ctx(t, dur+3*time.Minute)
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topic := fmt.Sprintf("checker-%d", run)
	if r, err := kadm.NewClient(adm).CreateTopic(ctx, parts, int16(rf), nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	cluster.WaitFor(t, 10*time.Second, func() error {
		for id := 1; id <= 3; id++ {
			if got, err := partitionLeaders(t, c.Node(id).KafkaAddr(), topic); err != nil || len(got) != parts {
				return fmt.Errorf("broker %d: %d partitions, %v", id, len(got), err)
			}
		}
		return nil
	})
	leaders, _ := partitionLeaders(t, c.Node(1).KafkaAddr(), topic)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []ackedRecord
	var failed atomic.Int64

	// Producers: idempotent, acks=all, unique ids.
	for pr := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(4*time.Second),
				kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			var inflight sync.WaitGroup
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					inflight.Wait()
					return
				default:
				}
				id := fmt.Sprintf("r%d-p%d-%d", run, pr, seq)
				inflight.Add(1)
				cl.Produce(ctx, &kgo.Record{Key: []byte(id), Value: []byte(id)}, func(r *kgo.Record, err error) {
					defer inflight.Done()
					if err != nil {
						failed.Add(1)
						return
					}
					mu.Lock()
					acked = append(acked, ackedRecord{r.Partition, r.Offset, id})
					mu.Unlock()
				})
				if seq%64 == 63 {
					time.Sleep(20 * time.Millisecond) // a steady few thousand records a second
				}
			}
		}()
	}

	// A librdkafka producer (confluent_kafka) alongside, for the same time.
	var lk struct {
		Acked  [][3]json.RawMessage `json:"acked"`
		Failed int                  `json:"failed"`
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-u", "-B", filepath.Join("python", "checker_producer.py"),
			"--bootstrap", strings.Join(seeds, ","), "--topic", topic, "--prefix", fmt.Sprintf("r%d-lk", run),
			"--seconds", strconv.FormatFloat(dur.Seconds(), 'f', 1, 64))
		out, err := cmd.Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &lk); err != nil || jerr != nil {
			t.Errorf("librdkafka producer: %v / %v\n%s", err, jerr, out)
		}
	}()

	// A read_committed group consumer reading while the faults run.
	during := map[int32][]ackedRecord{}
	var dmu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(topic+"-readers"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.SessionTimeout(10*time.Second),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			cancel()
			dmu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				during[r.Partition] = append(during[r.Partition], ackedRecord{r.Partition, r.Offset, string(r.Value)})
			})
			dmu.Unlock()
		}
	}()

	// High watermarks as each partition's leader answers, never back.
	hw := map[int32]int64{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for p, l := range leaders {
				off, err := listEnd(t, c.Node(int(l)).KafkaAddr(), topic, p)
				if err != nil {
					continue // the leader is down or paused
				}
				dmu.Lock()
				counts.hwChecks++
				if off < hw[p] {
					counts.hwBack++
					t.Errorf("partition %d: high watermark moved back from %d to %d", p, hw[p], off)
				}
				hw[p] = max(hw[p], off)
				dmu.Unlock()
			}
		}
	}()

	// Faults.
	rng := rand.New(rand.NewPCG(uint64(run), uint64(time.Now().UnixNano())))
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
		id := 1 + rng.IntN(3)
		switch rng.IntN(3) {
		case 0:
			c.Node(id).Kill()
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			c.Node(id).Restart()
		case 1:
			c.Node(id).Pause()
			time.Sleep(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
			c.Node(id).Resume()
		case 2:
			c.Isolate(id)
			time.Sleep(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
			c.Heal(id)
		}
		counts.faults++
	}
	close(stop)
	wg.Wait()

	// The final log, read once every broker is back.
	final := map[int32]map[int64]string{}
	ids := map[string]int{}
	end := map[int32]int64{}
	cluster.WaitFor(t, 60*time.Second, func() error {
		for p, l := range leaders {
			off, err := listEnd(t, c.Node(int(l)).KafkaAddr(), topic, p)
			if err != nil {
				return err
			}
			end[p] = off
		}
		return nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	read := func() int64 {
		var n int64
		for p := range final {
			n += int64(len(final[p]))
		}
		return n
	}
	var want int64
	for _, e := range end {
		want += e
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for read() < want && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			if final[r.Partition] == nil {
				final[r.Partition] = map[int64]string{}
			}
			final[r.Partition][r.Offset] = string(r.Value)
			ids[string(r.Value)]++
		})
	}
	if read() < want {
		t.Fatalf("read %d of %d records of the final log", read(), want)
	}

	for _, r := range lk.Acked {
		var a ackedRecord
		if json.Unmarshal(r[0], &a.partition) != nil || json.Unmarshal(r[1], &a.offset) != nil || json.Unmarshal(r[2], &a.id) != nil {
			t.Fatalf("librdkafka acknowledgement %s", r)
		}
		acked = append(acked, a)
	}
	counts.librdkafka = len(lk.Acked)
	counts.acked, counts.failed = len(acked), int(failed.Load())+lk.Failed
	for _, a := range acked {
		switch got, ok := final[a.partition][a.offset]; {
		case !ok:
			counts.lost++
			t.Errorf("acknowledged %s at %d/%d is not in the log", a.id, a.partition, a.offset)
		case got != a.id:
			counts.moved++
			t.Errorf("acknowledged %s at %d/%d, the log has %s there", a.id, a.partition, a.offset, got)
		}
	}
	for id, n := range ids {
		if n > 1 {
			counts.duplicated++
			t.Errorf("%s is in the log %d times", id, n)
		}
	}
	for p, recs := range during {
		for _, r := range recs {
			counts.consumed++
			if got := final[p][r.offset]; got != r.id {
				t.Errorf("consumer read %s at %d/%d while the log has %q there", r.id, p, r.offset, got)
			}
		}
	}
	if counts.acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
	if rf > 1 {
		// Followers fetch on until they hold the leader's log (the
		// under-replicated gauge of every leader back at zero is not
		// needed: a prefix is what must hold), then every broker stops
		// and each follower's batches must be a prefix of its leader's,
		// byte for byte.
		time.Sleep(2 * time.Second)
		for _, n := range c.Nodes() {
			n.Stop()
		}
		for p, l := range leaders {
			dir := fmt.Sprintf("%s-%d", topic, p)
			lead := readBatches(t, filepath.Join(c.Node(int(l)).DataDir(), dir))
			for _, n := range c.Nodes() {
				if n.ID == int(l) {
					continue
				}
				got := readBatches(t, filepath.Join(n.DataDir(), dir))
				if len(got) > len(lead) || !slices.EqualFunc(got, lead[:len(got)], bytes.Equal) {
					t.Errorf("partition %d: broker %d's %d batches are not a prefix of leader %d's %d", p, n.ID, len(got), l, len(lead))
				}
			}
		}
	}
	return counts
}

// listEnd asks broker addr for a partition's high watermark.
func listEnd(t *testing.T, addr, topic string, p int32) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = p, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := ask[*kmsg.ListOffsetsResponse](t, addr, req)
	if err != nil {
		return 0, err
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		return 0, fmt.Errorf("error %d", sp.ErrorCode)
	}
	return sp.Offset, nil
}
