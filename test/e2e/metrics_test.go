package e2e

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scrape returns every sample of /metrics as "name{labels}" -> value.
func scrape(t *testing.T, b *Broker) map[string]float64 {
	t.Helper()
	code, body := b.Get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsAddUp produces a known number of single-record batches and checks
// the release-notes metrics and request counters against it.
func TestMetricsAddUp(t *testing.T) {
	b := StartBroker(t, "--produce-profile", "balanced")
	ctx := Ctx(t, 60*time.Second)
	adm := kadm.NewClient(b.Client(t))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "m"); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, b)
	if got := before["chronik_produce_profile_active"]; got != 1 {
		t.Fatalf("chronik_produce_profile_active = %v, want 1 (balanced)", got)
	}
	// One record per ProduceSync with linger 0: every request carries
	// exactly one batch, so batch counts are exact.
	cl := b.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 300
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: "m", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Read everything back once, so the out counters have a known floor.
	consumer := b.Client(t, kgo.ConsumeTopics("m"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < n; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	after := scrape(t, b)
	delta := func(k string) float64 { return after[k] - before[k] }
	if got := delta("chronik_messages_in_total"); got != n {
		t.Errorf("chronik_messages_in_total grew by %v, want %d", got, n)
	}
	if got := delta("chronik_messages_out_total"); got < n {
		t.Errorf("chronik_messages_out_total grew by %v, want >= %d", got, n)
	}
	if in := delta("chronik_bytes_in_total"); in <= 0 || delta("chronik_bytes_out_total") < in {
		t.Errorf("bytes in %v, out %v: want out >= in > 0", in, delta("chronik_bytes_out_total"))
	}
	if got := delta("chronik_wal_batch_count_total"); got != n {
		t.Errorf("chronik_wal_batch_count_total grew by %v, want %d", got, n)
	}
	flushes := delta("chronik_produce_flush_total")
	if flushes < 1 || flushes > n {
		t.Errorf("chronik_produce_flush_total grew by %v, want 1..%d", flushes, n)
	}
	if got := delta(`chronik_requests_total{api="Produce"}`); got != n {
		t.Errorf(`chronik_requests_total{api="Produce"} grew by %v, want %d`, got, n)
	}
	if got := delta(`chronik_request_duration_seconds_count{api="Produce"}`); got != n {
		t.Errorf("produce latency histogram count grew by %v, want %d", got, n)
	}
	if avg := after["chronik_produce_batches_per_flush_avg"]; avg <= 0 || avg != after["chronik_wal_batch_size_avg"] {
		t.Errorf("batches per flush avg %v, wal batch size avg %v", avg, after["chronik_wal_batch_size_avg"])
	}
	if got := after["chronik_partitions"]; got != 2+50+50 { // and the internal topics'
		t.Errorf("chronik_partitions = %v, want 2 + 50 of __consumer_offsets + 50 of __transaction_state", got)
	}
	if got := after[`chronik_log_size_bytes{topic="m"}`]; got <= 0 {
		t.Errorf("chronik_log_size_bytes for m = %v, want > 0", got)
	}
	if after["chronik_fsync_round_duration_seconds_count"] < flushes {
		t.Errorf("fsync histogram count %v < flushes %v", after["chronik_fsync_round_duration_seconds_count"], flushes)
	}
	if after["chronik_network_received_bytes_total"] <= before["chronik_network_received_bytes_total"] {
		t.Error("received bytes did not grow")
	}
	if after["process_cpu_seconds_total"] <= 0 || after["go_goroutines"] <= 0 {
		t.Error("process and Go collectors missing")
	}
	code, body := b.Get(t, "/health")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/health = %d %s", code, body)
	}
}
