package e2e

// Log lifecycle with real clients: size and time retention swept by the
// broker (short --log-retention-check-interval-ms), consumers positioned
// before the new log start reset and see exactly the surviving records with
// their offsets, an expired active segment of a quiet topic deleted too, DeleteRecords through kadm surviving a restart, and topic
// configs round-tripping through kadm (IncrementalAlterConfigs,
// AlterConfigs) and Python confluent_kafka.admin (AlterConfigs).

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// retentionProduce produces n keyed records ("k-<i%7>", "v-<offset>") in
// batches of 5, one ProduceSync each, so small segments roll often.
func retentionProduce(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i += 5 {
		var rs []*kgo.Record
		for j := i; j < i+5 && j < from+n; j++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte("k-" + strconv.Itoa(j%7)),
				Value: []byte(fmt.Sprintf("v-%d-%s", j, strings.Repeat("x", 100)))})
		}
		if err := cl.ProduceSync(Ctx(t, 10*time.Second), rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func retentionStart(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	lo, err := adm.ListStartOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := lo.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// retentionConsumeFrom consumes partition 0 from offset at (resetting to the
// start when at is out of range) until end, checking every record's value
// names its own offset, and returns the first offset seen.
func retentionConsumeFrom(t *testing.T, b *Broker, topic string, at, end int64) int64 {
	t.Helper()
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(at)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx := Ctx(t, 20*time.Second)
	first, next := int64(-1), int64(-1)
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to %d of %s, want up to %d", next, topic, end)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error (reset expected): %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if first < 0 {
				first = r.Offset
			} else if r.Offset != next {
				t.Fatalf("offset %d after %d: gap or duplicate", r.Offset, next-1)
			}
			if want := fmt.Sprintf("v-%d-", r.Offset); !strings.HasPrefix(string(r.Value), want) {
				t.Fatalf("record at %d has value %.12q: offsets not preserved", r.Offset, r.Value)
			}
			next = r.Offset + 1
		})
	}
	return first
}

func retentionMetric(t *testing.T, b *Broker, name string) float64 {
	t.Helper()
	_, body := b.Get(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

func TestRetentionSweepsAndConsumersReset(t *testing.T) {
	b := StartBroker(t, "--log-retention-check-interval-ms", "100")
	adm := clientsAdmin(t, b)
	cl := b.Client(t, kgo.ProducerBatchCompression(kgo.NoCompression())) // predictable sizes
	const topic = "retained"
	clientsCreateTopic(t, adm, topic, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("2000")})
	retentionProduce(t, cl, topic, 0, 200)
	if s := retentionStart(t, adm, topic); s != 0 {
		t.Fatalf("start %d before any retention config", s)
	}

	// Size: set through IncrementalAlterConfigs; the sweep trims to ~4 KB.
	resp, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "retention.bytes", Value: kmsg.StringPtr("4000")}}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter retention.bytes: %v %v", err, resp)
	}
	var start int64
	CheckFor(t, 10*time.Second, func() error {
		// ~26 KB in ~2 KB segments: at most ~6 KB stay.
		if start = retentionStart(t, adm, topic); start < 100 {
			return fmt.Errorf("start offset %d, want >= 100 after size retention", start)
		}
		return nil
	})
	// The counters are bumped right after the start moves.
	CheckFor(t, 5*time.Second, func() error {
		for _, m := range []string{"chronik_retention_segments_deleted_total", "chronik_retention_bytes_deleted_total"} {
			if n := retentionMetric(t, b, m); n <= 0 {
				return fmt.Errorf("%s = %v", m, n)
			}
		}
		return nil
	})
	// A consumer at an old offset resets to the start and sees exactly the
	// survivors, offsets preserved.
	if first := retentionConsumeFrom(t, b, topic, 5, 200); first != retentionStart(t, adm, topic) {
		t.Fatalf("consumer reset to %d, want the start %d", first, retentionStart(t, adm, topic))
	}

	// Time: drop the size bound, set retention.ms; everything sealed goes.
	resp, err = adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "retention.bytes"},
		{Name: "retention.ms", Value: kmsg.StringPtr("1")},
	}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter retention.ms: %v %v", err, resp)
	}
	CheckFor(t, 10*time.Second, func() error {
		if s := retentionStart(t, adm, topic); s <= start || s > 200 {
			return fmt.Errorf("start offset %d, want in (%d, 200] after time retention", s, start)
		}
		return nil
	})
	// Producing continues at the end with offsets intact (retention.ms
	// dropped first: at 1 ms the sweep would take the new records too,
	// active segment included).
	resp, err = adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("drop retention.ms: %v %v", err, resp)
	}
	retentionProduce(t, cl, topic, 200, 10)
	retentionConsumeFrom(t, b, topic, 0, 210)
}

// A quiet topic whose records all expired loses its active segment too, as
// in Kafka: the log start reaches the log end, a consumer positioned before
// it gets OFFSET_OUT_OF_RANGE and from the start finds nothing, and
// producing continues at the same offset, also after a restart.
func TestRetentionExpiresActiveSegmentOfQuietTopic(t *testing.T) {
	b := StartBroker(t, "--log-retention-check-interval-ms", "100")
	adm := clientsAdmin(t, b)
	const topic = "quiet"
	clientsCreateTopic(t, adm, topic, 1, map[string]*string{"retention.ms": kmsg.StringPtr("3600000")})
	cl := b.Client(t)
	old := time.Now().Add(-2 * time.Hour) // older than retention.ms: expired on arrival
	for i := range 20 {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("v-%d-old", i)), Timestamp: old}
		if err := cl.ProduceSync(Ctx(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	CheckFor(t, 10*time.Second, func() error {
		if s := retentionStart(t, adm, topic); s != 20 {
			return fmt.Errorf("start offset %d, want 20 (the log end) once the active segment expired", s)
		}
		return nil
	})
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if e, _ := ends.Lookup(topic, 0); err != nil || e.Offset != 20 {
		t.Fatalf("end offset %+v, %v; want 20", e, err)
	}
	// A consumer positioned before the start is told OFFSET_OUT_OF_RANGE.
	tds, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, tds[topic].ID // franz-go sends the newest version, which names topics by id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = 5, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := cl.Request(Ctx(t, 10*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	fp := raw.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 20 {
		t.Fatalf("fetch at 5: error %v, log start %d; want OFFSET_OUT_OF_RANGE, 20", kerr.ErrorForCode(fp.ErrorCode), fp.LogStartOffset)
	}
	// From the earliest offset there is nothing to read.
	cons := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	fs := cons.PollFetches(ctx)
	cancel()
	fs.EachRecord(func(r *kgo.Record) { t.Fatalf("record at %d survived retention", r.Offset) })
	cons.Close()

	// Producing continues at the log end; new records are young and stay.
	retentionProduce(t, b.Client(t), topic, 20, 10)
	if first := retentionConsumeFrom(t, b, topic, 0, 30); first != 20 {
		t.Fatalf("first record %d, want 20", first)
	}
	b.Stop()
	b = StartBrokerIn(t, b.DataDir, "--log-retention-check-interval-ms", "100")
	adm = clientsAdmin(t, b)
	if s := retentionStart(t, adm, topic); s != 20 {
		t.Fatalf("start after restart %d, want 20", s)
	}
	retentionProduce(t, b.Client(t), topic, 30, 5)
	if first := retentionConsumeFrom(t, b, topic, 0, 35); first != 20 {
		t.Fatalf("first record after restart %d, want 20", first)
	}
}

func TestRetentionDeleteRecordsSurvivesRestart(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	const topic = "trimmed"
	clientsCreateTopic(t, adm, topic, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("2000")})
	retentionProduce(t, b.Client(t, kgo.ProducerBatchCompression(kgo.NoCompression())), topic, 0, 60)

	dr, err := adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := dr.Lookup(topic, 0)
	if !ok || r.Err != nil || r.LowWatermark != 30 {
		t.Fatalf("delete records: %+v", r)
	}
	if s := retentionStart(t, adm, topic); s != 30 {
		t.Fatalf("start %d, want 30", s)
	}
	dr, err = adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 1000}}})
	if r, _ := dr.Lookup(topic, 0); err != nil || r.Err == nil || !strings.Contains(r.Err.Error(), "OFFSET_OUT_OF_RANGE") {
		t.Fatalf("delete above the high watermark: %v %+v", err, r)
	}

	b.Stop()
	b = StartBrokerIn(t, b.DataDir)
	adm = clientsAdmin(t, b)
	if s := retentionStart(t, adm, topic); s != 30 {
		t.Fatalf("start after restart %d, want 30", s)
	}
	if first := retentionConsumeFrom(t, b, topic, 0, 60); first != 30 {
		t.Fatalf("first record after restart %d, want 30", first)
	}
}

func TestRetentionConfigsRoundTrip(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	const topic = "configured"
	clientsCreateTopic(t, adm, topic, 1, nil)

	// kadm incremental: SET, APPEND on the list config; validate-only changes nothing.
	resp, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{
		{Name: "retention.ms", Value: kmsg.StringPtr("3600000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
	}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, resp)
	}
	if _, err := adm.ValidateAlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("5")}}, topic); err != nil {
		t.Fatal(err)
	}
	cfgs := adminTopicConfigs(t, adm, topic)
	adminWantConfig(t, cfgs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
	// A bad value is refused naming the key.
	resp, err = adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("0")}}, topic)
	if err != nil || resp[0].Err == nil || !strings.Contains(resp[0].ErrMessage, "segment.ms") {
		t.Fatalf("bad segment.ms: %v %+v", err, resp)
	}
	// kadm non-incremental (AlterConfigs): replaces the set.
	resp, err = adm.AlterTopicConfigsState(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("500000")}}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter state: %v %+v", err, resp)
	}
	cfgs = adminTopicConfigs(t, adm, topic)
	adminWantConfig(t, cfgs, "max.message.bytes", "500000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// Python confluent_kafka.admin (AlterConfigs, DescribeConfigs).
	var py struct {
		Configs  map[string][2]string `json:"configs"`
		BadError string               `json:"bad_error"`
	}
	clientsRunPython(t, 60*time.Second, false, &py, "retention_configs.py", "--bootstrap", b.Addr, "--topic", topic)
	if c := py.Configs["retention.ms"]; c != [2]string{"86400000", "DYNAMIC_TOPIC_CONFIG"} {
		t.Fatalf("python retention.ms: %v", c)
	}
	if c := py.Configs["cleanup.policy"]; c != [2]string{"compact,delete", "DYNAMIC_TOPIC_CONFIG"} {
		t.Fatalf("python cleanup.policy: %v", c)
	}
	if c := py.Configs["max.message.bytes"]; c[1] != "DEFAULT_CONFIG" {
		t.Fatalf("python max.message.bytes not reset by AlterConfigs: %v", c)
	}
	if !strings.Contains(py.BadError, "retention.bytes") {
		t.Fatalf("python bad value error %q does not name the key", py.BadError)
	}

	// Survives a restart.
	b.Stop()
	b = StartBrokerIn(t, b.DataDir)
	cfgs = adminTopicConfigs(t, clientsAdmin(t, b), topic)
	adminWantConfig(t, cfgs, "retention.ms", "86400000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "cleanup.policy", "compact,delete", kmsg.ConfigSourceDynamicTopicConfig)
}
