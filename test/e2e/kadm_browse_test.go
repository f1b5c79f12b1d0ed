package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKadmBrowse calls every kadm Client method an admin UI (Kafka UI,
// AKHQ style) uses to browse topics, configs, offsets, log dirs and groups,
// against the real binary, and requires each to succeed with sensible
// content.
func TestKadmBrowse(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 60*time.Second)
	const topic, group, n = "browse", "browse-group", 30
	clientsCreateTopic(t, adm, topic, 3, map[string]*string{"retention.ms": kadmStr("3600000")})

	prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := 0; i < n; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	// A group member that consumed and committed 20 of 30: lag 10.
	cons := b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var got []*kgo.Record
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group consumed %d of %d", len(got), n)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if err := cons.CommitRecords(ctx, got[:20]...); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// Topics.
	tds, err := adm.ListTopics(ctx)
	if err != nil || tds.Error() != nil || len(tds[topic].Partitions) != 3 || tds[topic].ID == (kadm.TopicID{}) {
		t.Fatalf("ListTopics: %v / %+v", err, tds[topic])
	}
	tdsi, err := adm.ListTopicsWithInternal(ctx)
	// (Committed offsets live in the coordinator's own log, not in a topic,
	// so there is no internal topic to list.)
	if err != nil || tdsi.Error() != nil || len(tdsi) < len(tds) || len(tdsi[topic].Partitions) != 3 {
		t.Fatalf("ListTopicsWithInternal: %v / %v", err, tdsi.Names())
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil || len(md.Brokers) != 1 || md.Controller != md.Brokers[0].NodeID || len(md.Topics[topic].Partitions) != 3 {
		t.Fatalf("Metadata: %v / %+v", err, md)
	}
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader != md.Brokers[0].NodeID || p.LeaderEpoch != 0 || len(p.ISR) != 1 {
			t.Errorf("Metadata partition %+v", p)
		}
	}
	bm, err := adm.BrokerMetadata(ctx)
	if err != nil || bm.Cluster == "" || len(bm.Brokers) != 1 {
		t.Fatalf("BrokerMetadata: %v / %+v", err, bm)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	if resp, err := dc.RequestWith(ctx, b.Client(t)); err != nil || resp.ErrorCode != 0 || resp.ClusterID != bm.Cluster || len(resp.Brokers) != 1 {
		t.Fatalf("DescribeCluster: %v / %+v", err, resp)
	}

	// Configs.
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("DescribeTopicConfigs: %v / %+v", err, rcs)
	}
	if c := kadmConfig(rcs[0], "retention.ms"); c == nil || c.Value == nil || *c.Value != "3600000" {
		t.Errorf("retention.ms = %+v", c)
	}
	bcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(bcs) != 1 || bcs[0].Err != nil || len(bcs[0].Configs) == 0 {
		t.Fatalf("DescribeBrokerConfigs: %v / %+v", err, bcs)
	}

	// Offsets.
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil || starts.Error() != nil {
		t.Fatalf("ListStartOffsets: %v / %v", err, starts.Error())
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v / %v", err, ends.Error())
	}
	committedEnds, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil || committedEnds.Error() != nil {
		t.Fatalf("ListCommittedOffsets: %v / %v", err, committedEnds.Error())
	}
	var total int64
	for p := int32(0); p < 3; p++ {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		c, _ := committedEnds.Lookup(topic, p)
		if s.Offset != 0 || e.Offset != n/3 || c.Offset != e.Offset || e.LeaderEpoch != 0 {
			t.Errorf("partition %d: start %+v end %+v committed end %+v", p, s, e, c)
		}
		total += e.Offset
	}
	if total != n {
		t.Errorf("end offsets sum to %d, want %d", total, n)
	}
	var ofle kadm.OffsetForLeaderEpochRequest
	for p := int32(0); p < 3; p++ {
		ofle.Add(topic, p, 0)
	}
	ofl, err := adm.OffsetForLeaderEpoch(ctx, ofle)
	if err != nil {
		t.Fatalf("OffsetForLeaderEpoch: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		o := ofl[topic][p]
		if o.Err != nil || o.LeaderEpoch != 0 || o.EndOffset != n/3 {
			t.Errorf("OffsetForLeaderEpoch %d: %+v", p, o)
		}
	}

	// Log dirs.
	lds, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil || len(lds) != 1 {
		t.Fatalf("DescribeAllLogDirs: %v / %+v", err, lds)
	}
	for _, dirs := range lds {
		if dirs.Error() != nil || len(dirs) != 1 {
			t.Fatalf("log dirs: %+v", dirs)
		}
		for _, d := range dirs {
			if d.TotalBytes <= 0 || d.UsableBytes <= 0 {
				t.Errorf("log dir %s: total %d usable %d", d.Dir, d.TotalBytes, d.UsableBytes)
			}
		}
		var size int64
		for p := int32(0); p < 3; p++ {
			dp, ok := dirs.LookupPartition(topic, p)
			if !ok || dp.Size <= 0 {
				t.Errorf("log dir partition %d: %+v, %v", p, dp, ok)
			}
			size += dp.Size
		}
		if size == 0 {
			t.Error("topic size 0 in log dirs")
		}
	}

	// Groups.
	lgs, err := adm.ListGroups(ctx)
	if err != nil || lgs[group].Group != group || lgs[group].ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %v / %+v", err, lgs)
	}
	dgs, err := adm.DescribeGroups(ctx, group)
	if err != nil || dgs.Error() != nil || dgs[group].State != "Stable" || len(dgs[group].Members) != 1 || dgs[group].ProtocolType != "consumer" {
		t.Fatalf("DescribeGroups: %v / %+v", err, dgs[group])
	}
	fos, err := adm.FetchOffsets(ctx, group)
	if err != nil || fos.Error() != nil {
		t.Fatalf("FetchOffsets: %v / %v", err, fos.Error())
	}
	var committed int64
	fos.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 20 {
		t.Errorf("committed offsets sum to %d, want 20", committed)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil || lags.Error() != nil {
		t.Fatalf("Lag: %v / %v", err, lags.Error())
	}
	if l := lags[group].Lag.Total(); l != n-20 {
		t.Errorf("group lag %d, want %d", l, n-20)
	}

	// Replica management, as a single node answers it.
	set := kadm.TopicsSet{}
	set.Add(topic, 0, 1, 2)
	pr, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil || len(pr) != 0 {
		t.Fatalf("ListPartitionReassignments: %v / %+v", err, pr)
	}
	el, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil || len(el[topic]) != 3 {
		t.Fatalf("ElectLeaders: %v / %+v", err, el)
	}
	for p, r := range el[topic] {
		if !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			t.Errorf("ElectLeaders partition %d: %v", p, r.Err)
		}
	}
	if all, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil); err != nil || len(all) != 0 {
		t.Fatalf("ElectLeaders(all): %v / %+v", err, all)
	}
}

func kadmStr(s string) *string { return &s }

func kadmConfig(rc kadm.ResourceConfig, name string) *kadm.Config {
	for i := range rc.Configs {
		if rc.Configs[i].Key == name {
			return &rc.Configs[i]
		}
	}
	return nil
}
