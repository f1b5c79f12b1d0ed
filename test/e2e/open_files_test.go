package e2e

// The broker under a low open-file limit: partitions open on first use and
// idle ones are closed beyond --max-open-files, so 2,000 partitions are
// served with 256 descriptors, across a clean restart and a kill.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLowFileLimit(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed to run the broker with a low file limit: %v", err)
	}
	const limit, topics, per = 256, 20, 100
	wrapper := []string{prlimit, "--nofile=" + strconv.Itoa(limit) + ":" + strconv.Itoa(limit), "--"}
	dir := t.TempDir()
	b := startBroker(t, dir, wrapper, nil)
	if !strings.Contains(b.Logs(), `"max_open_files":128`) {
		t.Fatalf("budget not derived from the limit of %d:\n%s", limit, tail(b.Logs(), 30))
	}

	adm := kadm.NewClient(b.Client(t))
	var names []string
	for i := range topics {
		names = append(names, fmt.Sprintf("lim-%02d", i))
	}
	resp, err := adm.CreateTopics(Ctx(t, 60*time.Second), per, 1, nil, names...)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("create %d topics of %d partitions: %v", topics, per, err)
	}
	// One record per partition, all acknowledged.
	var recs []*kgo.Record
	for _, name := range names {
		for p := range int32(per) {
			recs = append(recs, &kgo.Record{Topic: name, Partition: p, Value: []byte(name + "/" + strconv.Itoa(int(p)))})
		}
	}
	produceAll := func(b *Broker) {
		t.Helper()
		cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err := cl.ProduceSync(Ctx(t, 120*time.Second), recs...).FirstErr(); err != nil {
			t.Fatalf("produce to %d partitions: %v", len(recs), err)
		}
	}
	produceAll(b)
	checkAll := func(b *Broker, want int64) {
		t.Helper()
		adm := kadm.NewClient(b.Client(t))
		ends, err := adm.ListEndOffsets(Ctx(t, 60*time.Second), names...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ends.Each(func(o kadm.ListedOffset) {
			n++
			if o.Err != nil || o.Offset != want {
				t.Errorf("%s-%d: end offset %d (%v), want %d", o.Topic, o.Partition, o.Offset, o.Err, want)
			}
		})
		if n != topics*per {
			t.Fatalf("end offsets of %d partitions, want %d", n, topics*per)
		}
		// Read every partition back.
		consumer := b.Client(t, kgo.ConsumeTopics(names...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		ctx := Ctx(t, 120*time.Second)
		for got < int(want)*topics*per {
			fs := consumer.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d records: %v", got, int(want)*topics*per, err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s-%d: %v", topic, p, err) })
			got += fs.NumRecords()
		}
		if fds := openFDs(t, b); fds >= limit {
			t.Fatalf("broker holds %d descriptors with a limit of %d", fds, limit)
		}
	}
	checkAll(b, 1)

	start := time.Now()
	b.Stop()
	t.Logf("clean stop with %d partitions: %v", topics*per, time.Since(start))
	b = startBroker(t, dir, wrapper, nil)
	checkAll(b, 1)
	produceAll(b)
	b.Kill()
	b = startBroker(t, dir, wrapper, nil)
	checkAll(b, 2)
}

// openFDs counts the broker process's open file descriptors.
func openFDs(t *testing.T, b *Broker) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdlePartitionsClose: partitions written to and then idle for a
// recovery-checkpoint interval are closed (chronik_partitions_open falls to
// what is still in use, their descriptors are gone) and serve their records
// again on the next read, and after a kill -9.
func TestIdlePartitionsClose(t *testing.T) {
	const parts = 200
	dir := t.TempDir()
	args := []string{"--log-flush-offset-checkpoint-interval-ms", "1000"}
	b := StartBrokerIn(t, dir, args...)
	adm := clientsAdmin(t, b)
	clientsCreateTopic(t, adm, "idle", parts, nil)
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(parts) {
		recs = append(recs, &kgo.Record{Topic: "idle", Partition: p, Value: []byte(strconv.Itoa(int(p)))})
	}
	ctx := Ctx(t, 2*time.Minute)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if open := scrape(t, b)["chronik_partitions_open"]; open < parts {
		t.Fatalf("%v partitions open right after writing to %d", open, parts)
	}
	// Every partition is idle now (internal ones included): at most a few
	// stay open, touched by the broker's own sweeps meanwhile.
	CheckFor(t, 30*time.Second, func() error {
		if open := scrape(t, b)["chronik_partitions_open"]; open > parts/10 {
			return fmt.Errorf("%v partitions still open", open)
		}
		return nil
	})
	check := func(b *Broker) {
		t.Helper()
		got := map[int32]string{}
		rd := b.Client(t, kgo.ConsumeTopics("idle"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for len(got) < parts {
			fs := rd.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = string(r.Value) })
		}
		for p := range int32(parts) {
			if got[p] != strconv.Itoa(int(p)) {
				t.Fatalf("partition %d: %q", p, got[p])
			}
		}
	}
	check(b)
	b.Kill()
	b = StartBrokerIn(t, dir, args...)
	check(b)
}
