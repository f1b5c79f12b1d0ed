package e2e

// Crash safety: kill -9 under acks=all load must lose no acknowledged record,
// move none, and leave every partition's offsets contiguous; a torn or
// half-written tail must be cut on restart with everything before it intact.

import (
	"context"
	bin "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ackLog records every acknowledged record: partition -> offset -> value.
type ackLog struct {
	mu   sync.Mutex
	acks map[int32]map[int64]string
	n    int
}

func newAckLog() *ackLog { return &ackLog{acks: map[int32]map[int64]string{}} }

func (a *ackLog) add(p int32, off int64, v string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.acks[p]
	if m == nil {
		m = map[int64]string{}
		a.acks[p] = m
	}
	if old, ok := m[off]; ok && old != v {
		return fmt.Errorf("partition %d offset %d acknowledged twice: %q and %q", p, off, old, v)
	}
	m[off] = v
	a.n++
	return nil
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// endOffsets lists the log end of partitions 0..n-1 of topic.
func endOffsets(t testing.TB, cl *kgo.Client, topic string, n int32) []int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < n; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(Ctx(t, 15*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, n)
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("ListOffsets %s-%d: %v", topic, p.Partition, err)
		}
		out[p.Partition] = p.Offset
	}
	return out
}

// readAll consumes partitions 0..n-1 of topic from offset 0 to their current
// end and returns the values by partition, failing on any offset hole.
func readAll(t testing.TB, b *Broker, topic string, n int32) [][]string {
	t.Helper()
	admin := b.Client(t)
	ends := endOffsets(t, admin, topic, n)
	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < n; p++ {
		parts[p] = kgo.NewOffset().At(0)
	}
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	out := make([][]string, n)
	ctx := Ctx(t, 30*time.Second)
	done := func() bool {
		for p := range n {
			if int64(len(out[p])) < ends[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			got := make([]int, n)
			for p := range out {
				got[p] = len(out[p])
			}
			t.Fatalf("reading %s back: got %v records of %v", topic, got, ends)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := int64(len(out[r.Partition])); r.Offset != want {
				t.Fatalf("%s-%d: record at offset %d, expected %d (hole or reorder)", topic, r.Partition, r.Offset, want)
			}
			out[r.Partition] = append(out[r.Partition], string(r.Value))
		})
	}
	for p := range n {
		if int64(len(out[p])) != ends[p] {
			t.Fatalf("%s-%d: read %d records, log end is %d", topic, p, len(out[p]), ends[p])
		}
	}
	return out
}

// verifyAcks checks that every acknowledged record is in the log read back
// with the same offset and value.
func verifyAcks(t testing.TB, acks *ackLog, got [][]string) {
	t.Helper()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for p, m := range acks.acks {
		for off, v := range m {
			if off >= int64(len(got[p])) {
				t.Fatalf("partition %d: acknowledged offset %d (%q) lost; log ends at %d", p, off, v, len(got[p]))
			}
			if got[p][off] != v {
				t.Fatalf("partition %d offset %d: acknowledged %q, log has %q", p, off, v, got[p][off])
			}
		}
	}
}

// loadUntil runs `producers` acks=all clients producing into topic for at
// least minLoad and until at least `target` records in total are
// acknowledged, then calls kill while the producers are still running, and
// stops them.
func loadUntil(t *testing.T, b *Broker, topic string, parts int32, producers, target int, minLoad time.Duration, acks *ackLog, round int, kill func()) {
	t.Helper()
	loadStart := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	var clients []*kgo.Client
	for i := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(2000),
			kgo.ProducerLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				v := fmt.Sprintf("r%d-p%d-%d", round, i, seq)
				rec := &kgo.Record{Topic: topic, Partition: int32(seq) % parts, Value: []byte(v)}
				cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
					if err != nil {
						return // not acknowledged: may or may not be in the log
					}
					if err := acks.add(r.Partition, r.Offset, string(r.Value)); err != nil {
						select {
						case errc <- err:
						default:
						}
					}
				})
			}
		}()
	}
	CheckFor(t, 20*time.Second, func() error {
		if n := acks.count(); n < target || time.Since(loadStart) < minLoad {
			return fmt.Errorf("%d of %d records acknowledged after %v", n, target, time.Since(loadStart))
		}
		return nil
	})
	kill()
	cancel()
	wg.Wait()
	for _, cl := range clients {
		cl.Close() // fails whatever is still buffered: not acknowledged
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

func TestCrashKillDuringProduce(t *testing.T) {
	const (
		topic     = "crash"
		parts     = 3
		producers = 4
		kills     = 3
	)
	dir := t.TempDir()
	// Small segments so the kills also land around segment rolls.
	args := []string{"--log-segment-bytes", "262144"}
	b := StartBrokerIn(t, dir, args...)
	createTopicKmsg(t, b.Client(t), topic, parts)
	acks := newAckLog()
	start := time.Now()
	for round := range kills {
		target := acks.count() + 3000
		loadUntil(t, b, topic, parts, producers, target, 1500*time.Millisecond, acks, round, b.Kill)
		if !b.Exited() {
			t.Fatal("broker still running after kill -9")
		}
		b = StartBrokerIn(t, dir, args...)
		got := readAll(t, b, topic, parts)
		verifyAcks(t, acks, got)
		total := 0
		for _, g := range got {
			total += len(g)
		}
		t.Logf("kill %d: %d acknowledged so far, %d records in the log after restart", round+1, acks.count(), total)
	}
	// One more round without a kill: producing resumes normally after
	// recovery and the final clean stop/restart keeps everything.
	loadUntil(t, b, topic, parts, 2, acks.count()+500, 500*time.Millisecond, acks, kills, func() {})
	b.Stop()
	b = StartBrokerIn(t, dir, args...)
	verifyAcks(t, acks, readAll(t, b, topic, parts))
	t.Logf("%d kills in %v", kills, time.Since(start).Round(time.Millisecond))
}

// lastSegment returns the path of the highest-based .log file of a
// partition directory.
func lastSegment(t testing.TB, partDir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(partDir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no segments in %s: %v", partDir, err)
	}
	sort.Strings(logs)
	return logs[len(logs)-1]
}

// lastBatch walks the batch headers of a segment file and returns the
// position, size and base offset of its last batch.
func lastBatch(t testing.TB, path string) (pos, size, base int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pos = -1
	for p := int64(0); p+12 <= int64(len(data)); {
		n := 12 + int64(bin.BigEndian.Uint32(data[p+8:]))
		if p+n > int64(len(data)) {
			t.Fatalf("%s: batch at %d overruns the file", path, p)
		}
		pos, size, base = p, n, int64(bin.BigEndian.Uint64(data[p:]))
		p += n
	}
	if pos < 0 {
		t.Fatalf("%s holds no batch", path)
	}
	return pos, size, base
}

func appendToFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashTornTail(t *testing.T) {
	const (
		topic = "torn"
		parts = 3
		per   = 300
	)
	dir := t.TempDir()
	// Several segments per partition. The group-commit WAL is off: with it
	// on, the damaged acknowledged batches would be restored from the WAL
	// (TestWALRestoresLostSegmentData covers that), and this test is about
	// segment recovery on its own.
	args := []string{"--log-segment-bytes", "16384", "--group-commit-wal=false"}
	b := StartBrokerIn(t, dir, args...)
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	createTopicKmsg(t, cl, topic, parts)
	ctx := Ctx(t, 30*time.Second)
	want := make([][]string, parts)
	for i := range per {
		var recs []*kgo.Record
		for p := range int32(parts) {
			v := fmt.Sprintf("p%d-%d-%s", p, i, strings.Repeat("x", 40))
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Record.Offset != int64(len(want[r.Record.Partition])) {
				t.Fatalf("partition %d: offset %d, want %d", r.Record.Partition, r.Record.Offset, len(want[r.Record.Partition]))
			}
			want[r.Record.Partition] = append(want[r.Record.Partition], string(r.Record.Value))
		}
	}
	cl.Close()
	b.Kill()

	// Partition 0: half of a valid batch appended (a torn write).
	seg0 := lastSegment(t, partitionDirOf(dir, topic, 0))
	half := rawBatch([]byte("torn-1"), []byte("torn-2"), []byte("torn-3"))
	appendToFile(t, seg0, half[:len(half)/2])
	// Partition 1: the last batch cut in the middle; its records are gone
	// (outside tampering after the ack), everything before must survive.
	seg1 := lastSegment(t, partitionDirOf(dir, topic, 1))
	pos, size, base1 := lastBatch(t, seg1)
	if err := os.Truncate(seg1, pos+size/2); err != nil {
		t.Fatal(err)
	}
	want[1] = want[1][:base1]
	// Partition 2: random garbage after the last batch.
	seg2 := lastSegment(t, partitionDirOf(dir, topic, 2))
	appendToFile(t, seg2, []byte("\x00\x00\x00\x00\x00\x00\x01\x00garbage that is not a batch \xde\xad\xbe\xef"))

	b = StartBrokerIn(t, dir, args...)
	// Partitions are recovered on first use: reading them back does it.
	got := readAll(t, b, topic, parts)
	for _, seg := range []string{seg0, seg1, seg2} {
		found := false
		for _, line := range strings.Split(b.Logs(), "\n") {
			found = found || strings.Contains(line, `"msg":"storage: truncating segment at first bad batch"`) &&
				strings.Contains(line, seg)
		}
		if !found {
			t.Fatalf("no truncation warning for %s in the log:\n%s", seg, tail(b.Logs(), 30))
		}
	}
	if n := strings.Count(b.Logs(), `"msg":"storage: truncating segment at first bad batch"`); n != 3 {
		t.Fatalf("%d truncation warnings, want 3 (one per damaged partition)", n)
	}
	for p := range parts {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d records after recovery, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range want[p] {
			if got[p][i] != want[p][i] {
				t.Fatalf("partition %d offset %d: %q, want %q", p, i, got[p][i], want[p][i])
			}
		}
	}
	// Producing continues at the right offsets.
	cl = b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(parts) {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("after")}).First()
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset != int64(len(want[p])) {
			t.Fatalf("partition %d: first produce after recovery at offset %d, want %d", p, r.Offset, len(want[p]))
		}
		want[p] = append(want[p], "after")
	}
	b.Stop()
	b = StartBrokerIn(t, dir, args...)
	got = readAll(t, b, topic, parts)
	for p := range parts {
		if strings.Join(got[p], ",") != strings.Join(want[p], ",") {
			t.Fatalf("partition %d differs after a clean restart: %d records, want %d", p, len(got[p]), len(want[p]))
		}
	}
}

func partitionDirOf(dataDir, topic string, p int32) string {
	return filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, p))
}
