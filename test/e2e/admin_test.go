package e2e

// Admin APIs through franz-go's kadm (and raw kmsg where kadm hides the
// wire answer): CreateTopics, DeleteTopics, CreatePartitions, ListOffsets,
// DescribeCluster, DescribeConfigs, Metadata auto-create, and that all of it
// survives a restart.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminTopicPartitions returns the partition count a fresh Metadata request (all
// topics; kadm's ListTopics would answer from its cache) reports for topic,
// or -1 when the topic is not listed.
func adminTopicPartitions(t *testing.T, b *Broker, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			t.Fatalf("metadata for %s: %v", topic, err)
		}
		return len(mt.Partitions)
	}
	return -1
}

// adminTopicConfigs returns DescribeConfigs for topic as name -> (value, source).
func adminTopicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func adminWantConfig(t *testing.T, cfgs map[string]kadm.Config, key, value string, src kmsg.ConfigSource) {
	t.Helper()
	c, ok := cfgs[key]
	if !ok {
		t.Fatalf("config %s not described (have %d configs)", key, len(cfgs))
	}
	if c.Value == nil || *c.Value != value || c.Source != src {
		t.Fatalf("config %s = %v (source %v), want %q (%v)", key, c.MaybeValue(), c.Source, value, src)
	}
}

func adminPartitionDirExists(b *Broker, topic string, p int) bool {
	_, err := os.Stat(filepath.Join(b.DataDir, fmt.Sprintf("%s-%d", topic, p)))
	return err == nil
}

// TestAdminCreateTopics covers CreateTopics' defaults, validate-only,
// configs and every refusal.
func TestAdminCreateTopics(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 60*time.Second)

	t.Run("explicit-partitions", func(t *testing.T) {
		r, err := adm.CreateTopic(ctx, 4, 1, nil, "explicit4")
		if err != nil || r.Err != nil || r.NumPartitions != 4 || r.ReplicationFactor != 1 {
			t.Fatalf("create: %v %+v", err, r)
		}
		if n := adminTopicPartitions(t, b, "explicit4"); n != 4 {
			t.Fatalf("metadata shows %d partitions, want 4", n)
		}
		for p := 0; p < 4; p++ {
			if !adminPartitionDirExists(b, "explicit4", p) {
				t.Fatalf("partition directory explicit4-%d missing", p)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		r, err := adm.CreateTopic(ctx, -1, -1, nil, "defaulted")
		if err != nil || r.Err != nil || r.NumPartitions != 3 || r.ReplicationFactor != 1 {
			t.Fatalf("create: %v %+v", err, r)
		}
		if n := adminTopicPartitions(t, b, "defaulted"); n != 3 {
			t.Fatalf("metadata shows %d partitions, want num.partitions = 3", n)
		}
	})

	t.Run("validate-only", func(t *testing.T) {
		rs, err := adm.ValidateCreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "dry-run")
		if err != nil || rs["dry-run"].Err != nil {
			t.Fatalf("validate: %v %+v", err, rs)
		}
		if n := adminTopicPartitions(t, b, "dry-run"); n != -1 {
			t.Fatalf("validate-only created the topic (%d partitions)", n)
		}
		if adminPartitionDirExists(b, "dry-run", 0) {
			t.Fatal("validate-only created a partition directory")
		}
		// The checks still run: a bad config fails validation too.
		rs, err = adm.ValidateCreateTopics(ctx, 2, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "dry-run")
		if err != nil || !errors.Is(rs["dry-run"].Err, kerr.InvalidConfig) {
			t.Fatalf("validate with a bad config: %v %+v", err, rs)
		}
	})

	t.Run("configs", func(t *testing.T) {
		cfg := map[string]*string{"retention.ms": kadm.StringPtr("3600000"), "cleanup.policy": kadm.StringPtr("compact")}
		r, err := adm.CreateTopic(ctx, 1, -1, cfg, "configured")
		if err != nil || r.Err != nil {
			t.Fatalf("create: %v %+v", err, r)
		}
		cfgs := adminTopicConfigs(t, adm, "configured")
		adminWantConfig(t, cfgs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
		adminWantConfig(t, cfgs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
		adminWantConfig(t, cfgs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	})

	refusals := []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    *kerr.Error
	}{
		{"unknown-config", "badcfg", 1, -1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig},
		{"bad-config-value", "badval", 1, -1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
		{"bad-cleanup-policy", "badpolicy", 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("shred")}, kerr.InvalidConfig},
		{"duplicate", "explicit4", 1, -1, nil, kerr.TopicAlreadyExists},
		{"slash", "a/b", 1, -1, nil, kerr.InvalidTopicException},
		{"dotdot", "..", 1, -1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, -1, nil, kerr.InvalidTopicException},
		{"space", "has space", 1, -1, nil, kerr.InvalidTopicException},
		{"too-long", strings.Repeat("x", 250), 1, -1, nil, kerr.InvalidTopicException},
		{"replication-factor-3", "rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"zero-partitions", "zero", 0, -1, nil, kerr.InvalidPartitions},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := adm.CreateTopics(ctx, tc.parts, tc.rf, tc.configs, tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			if got := rs[tc.topic].Err; !errors.Is(got, tc.want) {
				t.Fatalf("create %q: %v (%s), want %v", tc.topic, got, rs[tc.topic].ErrMessage, tc.want)
			}
			if tc.want != kerr.TopicAlreadyExists && adminTopicPartitions(t, b, tc.topic) != -1 {
				t.Fatalf("refused topic %q exists", tc.topic)
			}
		})
	}

	t.Run("longest-legal-name", func(t *testing.T) {
		name := strings.Repeat("y", 249)
		r, err := adm.CreateTopic(ctx, 1, -1, nil, name)
		if err != nil || r.Err != nil {
			t.Fatalf("create 249-char topic: %v %+v", err, r)
		}
		cl := b.Client(t)
		res, err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Value: []byte("long")}).First()
		if err != nil || res.Offset != 0 {
			t.Fatalf("produce to 249-char topic: %v %+v", err, res)
		}
	})
}

// TestAdminDeleteTopics: a deleted topic leaves metadata and disk, and the
// same name recreated starts empty at offset 0.
func TestAdminDeleteTopics(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 60*time.Second)
	clientsCreateTopic(t, adm, "doomed", 3, nil)
	prod := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 5; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "doomed", Partition: p, Value: []byte("old")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if !adminPartitionDirExists(b, "doomed", int(p)) {
			t.Fatalf("partition directory doomed-%d missing before delete", p)
		}
	}
	prod.Close()

	rs, err := adm.DeleteTopics(ctx, "doomed")
	if err != nil || rs["doomed"].Err != nil {
		t.Fatalf("delete: %v %+v", err, rs)
	}
	if n := adminTopicPartitions(t, b, "doomed"); n != -1 {
		t.Fatalf("deleted topic still in metadata with %d partitions", n)
	}
	CheckFor(t, 10*time.Second, func() error {
		for p := 0; p < 3; p++ {
			if adminPartitionDirExists(b, "doomed", p) {
				return fmt.Errorf("partition directory doomed-%d still on disk", p)
			}
		}
		return nil
	})
	rs, err = adm.DeleteTopics(ctx, "doomed")
	if err != nil || !errors.Is(rs["doomed"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v %+v, want UNKNOWN_TOPIC_OR_PARTITION", err, rs)
	}

	clientsCreateTopic(t, adm, "doomed", 2, nil)
	prod = b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, err := prod.ProduceSync(ctx, &kgo.Record{Topic: "doomed", Partition: 0, Value: []byte("new")}).First()
	if err != nil || res.Offset != 0 {
		t.Fatalf("produce to recreated topic: %v, offset %d (want 0)", err, res.Offset)
	}
	recs := clientsConsumeKgo(t, b, "doomed", 1, 20*time.Second)
	if recs[0].Value != "new" || recs[0].Offset != 0 {
		t.Fatalf("recreated topic holds %s", recs[0])
	}
	ends, err := adm.ListEndOffsets(ctx, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range []int64{1, 0} {
		if o, _ := ends.Lookup("doomed", int32(p)); o.Offset != want {
			t.Fatalf("recreated doomed-%d ends at %d, want %d", p, o.Offset, want)
		}
	}
}

// TestAdminCreatePartitions grows a topic 3 -> 5, uses the new partition,
// and refuses shrinking or standing still.
func TestAdminCreatePartitions(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 60*time.Second)
	clientsCreateTopic(t, adm, "grow", 3, nil)
	rs, err := adm.UpdatePartitions(ctx, 5, "grow")
	if err != nil || rs["grow"].Err != nil {
		t.Fatalf("grow to 5: %v %+v", err, rs)
	}
	if n := adminTopicPartitions(t, b, "grow"); n != 5 {
		t.Fatalf("metadata shows %d partitions after growing to 5", n)
	}
	prod := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, err := prod.ProduceSync(ctx, &kgo.Record{Topic: "grow", Partition: 4, Value: []byte("p4")}).First()
	if err != nil || res.Partition != 4 || res.Offset != 0 {
		t.Fatalf("produce to partition 4: %v %+v", err, res)
	}
	recs := clientsConsumeKgo(t, b, "grow", 1, 20*time.Second)
	if recs[0].Partition != 4 || recs[0].Value != "p4" {
		t.Fatalf("consumed %s", recs[0])
	}
	for _, n := range []int{2, 5} {
		rs, err = adm.UpdatePartitions(ctx, n, "grow")
		if err != nil || !errors.Is(rs["grow"].Err, kerr.InvalidPartitions) {
			t.Fatalf("set partitions to %d: %v %+v, want INVALID_PARTITIONS", n, err, rs)
		}
	}
	if n := adminTopicPartitions(t, b, "grow"); n != 5 {
		t.Fatalf("metadata shows %d partitions after refused changes", n)
	}
	rs, err = adm.UpdatePartitions(ctx, 4, "no-such-topic")
	if err != nil || !errors.Is(rs["no-such-topic"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("grow unknown topic: %v %+v", err, rs)
	}
}

// TestAdminListOffsets: earliest, latest, by timestamp (exact to the record
// inside a batch, the later record for a timestamp between two, -1 past the
// end) and max timestamp (-3).
func TestAdminListOffsets(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 60*time.Second)
	clientsCreateTopic(t, adm, "times", 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	// Offsets 0-2 go in one batch (linger), 3-5 in batches of their own;
	// offset 3 carries the largest timestamp.
	seconds := []int{0, 10, 20, 60, 30, 40}
	prod := b.Client(t, kgo.DefaultProduceTopic("times"), kgo.ProducerLinger(50*time.Millisecond))
	var first []*kgo.Record
	for i := 0; i < 3; i++ {
		first = append(first, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: at(seconds[i])})
	}
	if err := prod.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: at(seconds[i])}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl := b.Client(t)
	ms := func(s int) int64 { return at(s).UnixMilli() }
	cases := []struct {
		name          string
		ts            int64
		offset, tsOut int64
	}{
		{"earliest", -2, 0, -1},
		{"latest", -1, 6, -1},
		{"first-exact", ms(0), 0, ms(0)},
		{"exact-inside-batch", ms(10), 1, ms(10)},
		{"between-inside-batch", ms(15), 2, ms(20)},
		{"between-batches", ms(25), 3, ms(60)},
		{"after-max-before-later", ms(50), 3, ms(60)},
		{"past-the-end", ms(70), -1, -1},
		{"max-timestamp", -3, 3, ms(60)},
	}
	for _, tc := range cases {
		off, ts := clientsListOffset(t, cl, "times", 0, tc.ts)
		if off != tc.offset || (tc.tsOut != -1 && ts != tc.tsOut) {
			t.Errorf("%s: ListOffsets(%d) = offset %d ts %d, want offset %d ts %d", tc.name, tc.ts, off, ts, tc.offset, tc.tsOut)
		}
	}
	// The same through kadm's helpers.
	lo, err := adm.ListOffsetsAfterMilli(ctx, ms(15), "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("times", 0); o.Err != nil || o.Offset != 2 {
		t.Fatalf("kadm ListOffsetsAfterMilli = %+v, want offset 2", o)
	}
	starts, err := adm.ListStartOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup("times", 0); s.Offset != 0 {
		t.Fatalf("start offset %d", s.Offset)
	}
	if e, _ := ends.Lookup("times", 0); e.Offset != 6 {
		t.Fatalf("end offset %d", e.Offset)
	}
}

func adminDescribeCluster(t *testing.T, cl *kgo.Client) *kmsg.DescribeClusterResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	return resp
}

// TestAdminDescribeClusterAndConfigs: one broker at the advertised address,
// a cluster id, the full set of topic defaults and the broker settings
// (operator-set values as STATIC_BROKER_CONFIG).
func TestAdminDescribeClusterAndConfigs(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	cl := b.Client(t)
	dc := adminDescribeCluster(t, cl)
	if dc.ClusterID == "" || len(dc.Brokers) != 1 || dc.ControllerID != 1 {
		t.Fatalf("DescribeCluster: %+v", dc)
	}
	if br := dc.Brokers[0]; br.NodeID != 1 || fmt.Sprintf("%s:%d", br.Host, br.Port) != b.Addr {
		t.Fatalf("DescribeCluster broker %+v, want node 1 at %s", br, b.Addr)
	}
	md, err := adm.BrokerMetadata(context.Background())
	if err != nil || md.Cluster != dc.ClusterID {
		t.Fatalf("Metadata cluster id %q vs DescribeCluster %q (%v)", md.Cluster, dc.ClusterID, err)
	}

	clientsCreateTopic(t, adm, "described", 2, nil)
	cfgs := adminTopicConfigs(t, adm, "described")
	defaults := map[string]string{
		"retention.ms":           "604800000",
		"cleanup.policy":         "delete",
		"retention.bytes":        "-1",
		"segment.bytes":          "1073741824",
		"max.message.bytes":      "1048588",
		"min.insync.replicas":    "1",
		"compression.type":       "producer",
		"message.timestamp.type": "CreateTime",
	}
	for k, v := range defaults {
		adminWantConfig(t, cfgs, k, v, kmsg.ConfigSourceDefaultConfig)
	}
	if len(cfgs) < 12 {
		t.Fatalf("only %d topic configs described", len(cfgs))
	}
	rcs, err := adm.DescribeTopicConfigs(context.Background(), "no-such-topic")
	if err == nil {
		if rc, _ := rcs.On("no-such-topic", nil); !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("configs of a missing topic: %+v", rc)
		}
	} else if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("configs of a missing topic: %v", err)
	}

	brokerCfgs := func(adm *kadm.Client) map[string]kadm.Config {
		rcs, err := adm.DescribeBrokerConfigs(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("1", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("broker configs: %v %v", err, rc.Err)
		}
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
		return out
	}
	bc := brokerCfgs(adm)
	adminWantConfig(t, bc, "auto.create.topics.enable", "true", kmsg.ConfigSourceDefaultConfig)
	adminWantConfig(t, bc, "num.partitions", "3", kmsg.ConfigSourceDefaultConfig)
	adminWantConfig(t, bc, "log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	adminWantConfig(t, bc, "message.max.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)

	b2 := StartBroker(t, "--num-partitions", "5", "--auto-create-topics=false")
	bc = brokerCfgs(clientsAdmin(t, b2))
	adminWantConfig(t, bc, "auto.create.topics.enable", "false", kmsg.ConfigSourceStaticBrokerConfig)
	adminWantConfig(t, bc, "num.partitions", "5", kmsg.ConfigSourceStaticBrokerConfig)
}

// TestAdminStatePersistsAcrossRestart: topics, partition counts, configs,
// deletions, data and the cluster id survive a clean restart; a topic created
// just before a kill -9 survives too (CreateTopics answers after the metadata
// record is durable).
func TestAdminStatePersistsAcrossRestart(t *testing.T) {
	const n = 300
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 90*time.Second)
	clientsCreateTopic(t, adm, "keep-a", 4, map[string]*string{"retention.ms": kadm.StringPtr("123456"), "cleanup.policy": kadm.StringPtr("compact")})
	clientsCreateTopic(t, adm, "keep-b", 2, nil)
	clientsCreateTopic(t, adm, "gone", 2, nil)
	if rs, err := adm.DeleteTopics(ctx, "gone"); err != nil || rs["gone"].Err != nil {
		t.Fatalf("delete: %v %+v", err, rs)
	}
	if rs, err := adm.UpdatePartitions(ctx, 3, "keep-b"); err != nil || rs["keep-b"].Err != nil {
		t.Fatalf("grow: %v %+v", err, rs)
	}
	prod := b.Client(t, kgo.DefaultProduceTopic("keep-a"))
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(clientsKey("keep", i)), Value: []byte(clientsValue("keep", i)),
			Headers: []kgo.RecordHeader{{Key: "idx", Value: []byte(strconv.Itoa(i))}}})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	clusterID := adminDescribeCluster(t, b.Client(t)).ClusterID
	endsBefore, err := adm.ListEndOffsets(ctx, "keep-a")
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, b *Broker) {
		t.Helper()
		adm := clientsAdmin(t, b)
		for topic, want := range map[string]int{"keep-a": 4, "keep-b": 3, "gone": -1} {
			if got := adminTopicPartitions(t, b, topic); got != want {
				t.Fatalf("after restart %s has %d partitions, want %d", topic, got, want)
			}
		}
		cfgs := adminTopicConfigs(t, adm, "keep-a")
		adminWantConfig(t, cfgs, "retention.ms", "123456", kmsg.ConfigSourceDynamicTopicConfig)
		adminWantConfig(t, cfgs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
		adminWantConfig(t, adminTopicConfigs(t, adm, "keep-b"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
		if id := adminDescribeCluster(t, b.Client(t)).ClusterID; id != clusterID {
			t.Fatalf("cluster id changed across restart: %q -> %q", clusterID, id)
		}
		recs := clientsConsumeKgo(t, b, "keep-a", n, 30*time.Second)
		clientsCheckDataset(t, "keep-a after restart", recs, "keep", n, func(i int) [][]string { return [][]string{{"idx", strconv.Itoa(i)}} })
		ends, err := adm.ListEndOffsets(context.Background(), "keep-a")
		if err != nil {
			t.Fatal(err)
		}
		endsBefore.Each(func(o kadm.ListedOffset) {
			if e, _ := ends.Lookup(o.Topic, o.Partition); e.Offset != o.Offset {
				t.Fatalf("keep-a-%d ends at %d after restart, %d before", o.Partition, e.Offset, o.Offset)
			}
		})
	}

	b.Stop()
	b = StartBrokerIn(t, b.DataDir)
	check(t, b)

	// A later append continues the offsets.
	prod = b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, err := prod.ProduceSync(ctx, &kgo.Record{Topic: "keep-b", Partition: 2, Value: []byte("x")}).First()
	if err != nil || res.Offset != 0 {
		t.Fatalf("produce to grown partition after restart: %v %+v", err, res)
	}
	clientsCreateTopic(t, clientsAdmin(t, b), "born-before-kill", 2, nil)
	b.Kill()
	b = StartBrokerIn(t, b.DataDir)
	check(t, b)
	if n := adminTopicPartitions(t, b, "born-before-kill"); n != 2 {
		t.Fatalf("topic created before kill -9 has %d partitions after restart, want 2", n)
	}
}

// adminMetadataTopic sends one Metadata request at version v for topic.
func adminMetadataTopic(t *testing.T, cl *kgo.Client, v int16, topic string, allowAuto bool) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = allowAuto
	// Pin the version: the broker reads AllowAutoTopicCreation only at v4+.
	kresp, err := cl.Broker(1).Request(context.Background(), &adminPinnedMetadata{req, v})
	if err != nil {
		t.Fatalf("metadata v%d: %v", v, err)
	}
	resp := kresp.(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata v%d: %d topics", v, len(resp.Topics))
	}
	return resp.Topics[0]
}

// adminPinnedMetadata caps the version kgo negotiates for a Metadata request.
type adminPinnedMetadata struct {
	*kmsg.MetadataRequest
	v int16
}

func (p *adminPinnedMetadata) MaxVersion() int16 { return p.v }

// TestAdminMetadataAutoCreate (franz-go and raw Metadata): auto-create gives
// num.partitions partitions, honours AllowAutoTopicCreation at v4+, always
// applies below v4 (no such field), and is off with
// --auto-create-topics=false.
func TestAdminMetadataAutoCreate(t *testing.T) {
	produceAuto := func(t *testing.T, b *Broker, topic string) error {
		cl := b.Client(t, kgo.AllowAutoTopicCreation(), kgo.UnknownTopicRetries(2), kgo.RecordRetries(2))
		return cl.ProduceSync(Ctx(t, 20*time.Second), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	t.Run("default-3", func(t *testing.T) {
		b := StartBroker(t)
		if err := produceAuto(t, b, "auto-three"); err != nil {
			t.Fatal(err)
		}
		if n := adminTopicPartitions(t, b, "auto-three"); n != 3 {
			t.Fatalf("auto-created topic has %d partitions, want 3", n)
		}
		cl := b.Client(t)
		// v4+ without the flag: no creation.
		if mt := adminMetadataTopic(t, cl, 12, "not-allowed", false); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("metadata v12 allow=false: error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
		if n := adminTopicPartitions(t, b, "not-allowed"); n != -1 {
			t.Fatalf("metadata with AllowAutoTopicCreation=false created the topic")
		}
		// v1 (kafka-python's version) has no flag: created.
		if mt := adminMetadataTopic(t, cl, 1, "v1-created", false); mt.ErrorCode != 0 || len(mt.Partitions) != 3 {
			t.Fatalf("metadata v1: error %d, %d partitions", mt.ErrorCode, len(mt.Partitions))
		}
		// An illegal name is refused, never created.
		if mt := adminMetadataTopic(t, cl, 12, "bad/name", true); mt.ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("metadata for bad/name: error %d, want INVALID_TOPIC_EXCEPTION", mt.ErrorCode)
		}
	})
	t.Run("num-partitions-5", func(t *testing.T) {
		b := StartBroker(t, "--num-partitions", "5")
		if err := produceAuto(t, b, "auto-five"); err != nil {
			t.Fatal(err)
		}
		if n := adminTopicPartitions(t, b, "auto-five"); n != 5 {
			t.Fatalf("auto-created topic has %d partitions, want 5", n)
		}
		r, err := clientsAdmin(t, b).CreateTopic(context.Background(), -1, -1, nil, "explicit-default")
		if err != nil || r.Err != nil || r.NumPartitions != 5 {
			t.Fatalf("CreateTopics with -1 partitions: %v %+v, want num.partitions = 5", err, r)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		b := StartBroker(t, "--auto-create-topics=false")
		err := produceAuto(t, b, "never")
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("produce with auto-create off: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		cl := b.Client(t)
		for _, v := range []int16{1, 12} {
			if mt := adminMetadataTopic(t, cl, v, "never", true); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("metadata v%d: error %d, want UNKNOWN_TOPIC_OR_PARTITION", v, mt.ErrorCode)
			}
		}
		if n := adminTopicPartitions(t, b, "never"); n != -1 {
			t.Fatalf("topic created with auto-create off (%d partitions)", n)
		}
	})
}
