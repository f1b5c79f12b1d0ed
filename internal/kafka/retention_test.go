package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// smallSegments makes every produced 10-record batch (~300 bytes) roll a
// segment after about three batches.
var smallSegments = map[string]string{"segment.bytes": "1000"}

// produceN produces n batches of 10 records with first timestamp ts (0: now)
// and returns the high watermark.
func (f *brokerFixture) produceN(topic string, n int, ts int64) int64 {
	f.t.Helper()
	for range n {
		spec := plainBatch(10)
		spec.ts = ts
		f.mustProduce(topic, 0, makeRecordBatch(f.t, spec))
	}
	return f.b.partition(topic, 0).HighWatermark()
}

func deleteRecordsReq(topic string, partition int32, offset int64) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func (f *brokerFixture) deleteRecords(topic string, partition int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	f.t.Helper()
	resp := f.do(deleteRecordsReq(topic, partition, offset), 2).(*kmsg.DeleteRecordsResponse)
	return resp.Topics[0].Partitions[0]
}

func TestDeleteRecords(t *testing.T) {
	f := newFixture(t)
	f.createTopic("dr", 1, smallSegments)
	hwm := f.produceN("dr", 12, 0)
	segsBefore := len(f.b.partition("dr", 0).Log().Segments())
	if segsBefore < 3 {
		t.Fatalf("want several segments, got %d", segsBefore)
	}

	sp := f.deleteRecords("dr", 0, 55)
	wantCode(t, "delete records to 55", sp.ErrorCode, nil)
	if sp.LowWatermark != 55 {
		t.Fatalf("low watermark %d, want 55", sp.LowWatermark)
	}
	if got := len(f.b.partition("dr", 0).Log().Segments()); got >= segsBefore {
		t.Fatalf("no segment deleted: %d before, %d after", segsBefore, got)
	}
	wantCode(t, "fetch below start", f.fetch("dr", 0, 54, 1<<20).ErrorCode, kerr.OffsetOutOfRange)
	fp := f.fetch("dr", 0, 55, 1<<20)
	wantCode(t, "fetch at start", fp.ErrorCode, nil)
	if fp.LogStartOffset != 55 || len(fp.RecordBatches) == 0 {
		t.Fatalf("fetch at start: log start %d, %d bytes", fp.LogStartOffset, len(fp.RecordBatches))
	}
	if lo := f.listOffset("dr", 0, -2); lo.Offset != 55 {
		t.Fatalf("earliest %d, want 55", lo.Offset)
	}
	if lo := f.listOffset("dr", 0, 0); lo.Offset != 55 {
		t.Fatalf("offset for timestamp 0: %d, want 55", lo.Offset)
	}

	// Lower: no change. Above the HWM or negative: out of range.
	if sp := f.deleteRecords("dr", 0, 10); sp.ErrorCode != 0 || sp.LowWatermark != 55 {
		t.Fatalf("lower offset: %v, low %d", kerr.ErrorForCode(sp.ErrorCode), sp.LowWatermark)
	}
	wantCode(t, "above hwm", f.deleteRecords("dr", 0, hwm+1).ErrorCode, kerr.OffsetOutOfRange)
	wantCode(t, "negative", f.deleteRecords("dr", 0, -5).ErrorCode, kerr.OffsetOutOfRange)
	wantCode(t, "unknown topic", f.deleteRecords("nope", 0, 1).ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown partition", f.deleteRecords("dr", 3, 1).ErrorCode, kerr.UnknownTopicOrPartition)

	// Survives a clean restart and a crash.
	f = f.reopen(false)
	if lo := f.listOffset("dr", 0, -2); lo.Offset != 55 {
		t.Fatalf("earliest after restart %d, want 55", lo.Offset)
	}
	// -1 means the high watermark: everything goes; appends continue.
	if sp := f.deleteRecords("dr", 0, -1); sp.ErrorCode != 0 || sp.LowWatermark != hwm {
		t.Fatalf("delete to -1: %v, low %d, want %d", kerr.ErrorForCode(sp.ErrorCode), sp.LowWatermark, hwm)
	}
	f = f.reopen(true)
	if lo := f.listOffset("dr", 0, -2); lo.Offset != hwm {
		t.Fatalf("earliest after crash %d, want %d", lo.Offset, hwm)
	}
	if off := f.mustProduce("dr", 0, makeRecordBatch(t, plainBatch(1))); off != hwm {
		t.Fatalf("append after delete-all at %d, want %d", off, hwm)
	}
}

func TestRetentionSweep(t *testing.T) {
	f := newFixture(t)
	f.createTopic("bysize", 1, map[string]string{"segment.bytes": "1000", "retention.bytes": "1500"})
	old := time.Now().Add(-time.Hour).UnixMilli()
	f.createTopic("bytime", 1, map[string]string{"segment.bytes": "1000", "retention.ms": "60000"})
	f.createTopic("compacted", 1, map[string]string{"segment.bytes": "1000", "retention.ms": "60000", "cleanup.policy": "compact"})
	for _, topic := range []string{"bysize", "bytime", "compacted"} {
		f.produceN(topic, 12, old)
	}
	// New data in bytime: only the old segments may go.
	f.produceN("bytime", 4, 0)
	sizeBefore := f.b.partition("bysize", 0).Log().Size()

	f.b.sweepRetention(context.Background(), time.Now())

	p := f.b.partition("bysize", 0)
	if sz := p.Log().Size(); sz < 1500 || sz >= sizeBefore || p.Log().LogStartOffset() == 0 {
		t.Fatalf("size retention: size %d (was %d, bound 1500), start %d", sz, sizeBefore, p.Log().LogStartOffset())
	}
	p = f.b.partition("bytime", 0)
	start := p.Log().LogStartOffset()
	if start == 0 || start > 120 {
		t.Fatalf("time retention: start %d, want in (0, 120]", start)
	}
	for _, s := range p.Log().Segments() {
		if s.Sealed && s.Next <= 120 && s.Base < start {
			t.Fatalf("old segment %+v kept below start %d", s, start)
		}
	}
	wantCode(t, "fetch below retention start", f.fetch("bytime", 0, 0, 1<<20).ErrorCode, kerr.OffsetOutOfRange)
	if lo := f.listOffset("bytime", 0, -2); lo.Offset != start {
		t.Fatalf("earliest %d, want %d", lo.Offset, start)
	}
	if s := f.b.partition("compacted", 0).Log().LogStartOffset(); s != 0 {
		t.Fatalf("compact topic lost data to time retention: start %d", s)
	}
	st := f.b.Retention()
	if st.SegmentsDeleted == 0 || st.BytesDeleted == 0 {
		t.Fatalf("retention stats not counted: %+v", st)
	}

	// Turning on delete for the compacted topic applies at the next pass.
	alterIncr(f, "compacted", kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", "delete", false)
	f.b.sweepRetention(context.Background(), time.Now())
	if s := f.b.partition("compacted", 0).Log().LogStartOffset(); s == 0 {
		t.Fatal("compact,delete topic not swept")
	}
}

// A quiet partition whose records all expired loses its active segment too
// (rolled, then deleted, as Kafka does): the log start reaches the log end,
// fetches below it are out of range, the epoch history is trimmed, and
// producing continues at the same offset across a crash.
func TestRetentionDeletesExpiredActiveSegment(t *testing.T) {
	f := newFixture(t)
	f.createTopic("quiet", 1, map[string]string{"retention.ms": "60000"})
	f.createTopic("young", 1, map[string]string{"retention.ms": "60000"})
	hwm := f.produceN("quiet", 3, time.Now().Add(-time.Hour).UnixMilli())
	f.produceN("young", 3, 0)
	p := f.b.partition("quiet", 0)
	if n := len(p.Log().Segments()); n != 1 {
		t.Fatalf("want only the active segment, got %d", n)
	}

	f.b.sweepRetention(context.Background(), time.Now())

	segs := p.Log().Segments()
	if len(segs) != 1 || segs[0].Size != 0 || segs[0].Base != hwm || p.Log().LogStartOffset() != hwm || p.Log().LogEndOffset() != hwm {
		t.Fatalf("after retention: segments %+v, start %d, end %d; want one empty segment at %d", segs, p.Log().LogStartOffset(), p.Log().LogEndOffset(), hwm)
	}
	if st := f.b.Retention(); st.SegmentsDeleted != 1 {
		t.Fatalf("retention stats %+v, want 1 segment", st)
	}
	wantCode(t, "fetch below the start", f.fetch("quiet", 0, 0, 1<<20).ErrorCode, kerr.OffsetOutOfRange)
	if fp := f.fetch("quiet", 0, hwm, 1<<20); fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 || fp.LogStartOffset != hwm {
		t.Fatalf("fetch at the end: %v, %d bytes, log start %d", kerr.ErrorForCode(fp.ErrorCode), len(fp.RecordBatches), fp.LogStartOffset)
	}
	if lo := f.listOffset("quiet", 0, -2); lo.Offset != hwm {
		t.Fatalf("earliest %d, want %d", lo.Offset, hwm)
	}
	if got := p.LeaderEpochs(); len(got) != 1 || got[0] != (partition.EpochEntry{Epoch: 0, Start: hwm}) {
		t.Fatalf("epochs after retention: %v", got)
	}
	if s := f.b.partition("young", 0).Log().LogStartOffset(); s != 0 {
		t.Fatalf("young active segment deleted: start %d", s)
	}
	// A second pass has nothing left to do: the new active segment is empty.
	f.b.sweepRetention(context.Background(), time.Now())
	if st := f.b.Retention(); st.SegmentsDeleted != 1 {
		t.Fatalf("empty active segment deleted: %+v", st)
	}

	f = f.reopen(true)
	p = f.b.partition("quiet", 0)
	if p.Log().LogStartOffset() != hwm || p.Log().LogEndOffset() != hwm {
		t.Fatalf("after crash: start %d end %d, want %d", p.Log().LogStartOffset(), p.Log().LogEndOffset(), hwm)
	}
	if off := f.mustProduce("quiet", 0, makeRecordBatch(t, plainBatch(2))); off != hwm {
		t.Fatalf("append after retention emptied the log at %d, want %d", off, hwm)
	}
	f = f.reopen(false)
	if fp := f.fetch("quiet", 0, hwm, 1<<20); fp.ErrorCode != 0 || len(batchOffsets(t, fp.RecordBatches)) != 1 {
		t.Fatalf("fetch after restart: %v, %v", kerr.ErrorForCode(fp.ErrorCode), batchOffsets(t, fp.RecordBatches))
	}
}

// The sweep goroutine runs and stops.
func TestRetentionLoop(t *testing.T) {
	f := newFixture(t)
	f.createTopic("loop", 1, map[string]string{"segment.bytes": "1000", "retention.ms": "1000"})
	f.produceN("loop", 12, time.Now().Add(-time.Hour).UnixMilli())
	f.b.StartRetention(10 * time.Millisecond)
	defer f.b.StopRetention()
	deadline := time.Now().Add(10 * time.Second)
	for f.b.partition("loop", 0).Log().LogStartOffset() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("retention loop did not move the log start within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.b.StopRetention()
}

func describeTopic(f *brokerFixture, topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	f.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, rr)
	resp := f.do(req, 4).(*kmsg.DescribeConfigsResponse)
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

func alterReq(topic string, validateOnly bool, kv ...string) *kmsg.AlterConfigsRequest {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	return req
}

func alterIncr(f *brokerFixture, topic string, op kmsg.IncrementalAlterConfigOp, name, value string, validateOnly bool) kmsg.IncrementalAlterConfigsResponseResource {
	f.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, kmsg.StringPtr(value)
	rr.Configs = append(rr.Configs, c)
	req.Resources = append(req.Resources, rr)
	return f.do(req, 1).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
}

func TestAlterConfigs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("ac", 1, map[string]string{"segment.ms": "3600000"})
	res := f.do(alterReq("ac", false, "retention.ms", "1234", "max.message.bytes", "2000"), 2).(*kmsg.AlterConfigsResponse).Resources[0]
	wantCode(t, "alter", res.ErrorCode, nil)
	cfgs := describeTopic(f, "ac")
	if c := cfgs["retention.ms"]; *c.Value != "1234" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after alter: %s (source %v)", *c.Value, c.Source)
	}
	// Not listed: back to the default (AlterConfigs replaces the whole set).
	if c := cfgs["segment.ms"]; c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.ms not reset by AlterConfigs: %s (source %v)", *c.Value, c.Source)
	}
	// In effect at once: a 3000-byte batch is now too large.
	spec := plainBatch(10)
	spec.valueSize = 300
	wantCode(t, "produce over new max.message.bytes", f.produce("ac", 0, makeRecordBatch(t, spec)).ErrorCode, kerr.MessageTooLarge)

	// Bad values and unknown keys change nothing and name the key.
	for _, kv := range [][]string{{"retention.ms", "soon"}, {"cleanup.policy", "shred"}, {"no.such.config", "1"}} {
		res := f.do(alterReq("ac", false, kv...), 2).(*kmsg.AlterConfigsResponse).Resources[0]
		wantCode(t, "alter "+kv[0], res.ErrorCode, kerr.InvalidConfig)
		if res.ErrorMessage == nil || !strings.Contains(*res.ErrorMessage, kv[0]) {
			t.Errorf("alter %s: message %v does not name the key", kv[0], res.ErrorMessage)
		}
	}
	if !strings.Contains(*f.do(alterReq("ac", false, "cleanup.policy", "shred"), 2).(*kmsg.AlterConfigsResponse).Resources[0].ErrorMessage, "compact") {
		t.Error("cleanup.policy message does not list the allowed values")
	}
	// validate_only changes nothing.
	wantCode(t, "validate only", f.do(alterReq("ac", true, "retention.ms", "99"), 2).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, nil)
	if v := *describeTopic(f, "ac")["retention.ms"].Value; v != "1234" {
		t.Fatalf("validate_only changed retention.ms to %s", v)
	}
	wantCode(t, "unknown topic", f.do(alterReq("nope", false, "retention.ms", "1"), 2).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, kerr.UnknownTopicOrPartition)
	breq := alterReq("1", false, "log.dirs", "/x")
	breq.Resources[0].ResourceType = kmsg.ConfigResourceTypeBroker
	wantCode(t, "static broker config", f.do(breq, 0).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, kerr.InvalidConfig)

	// Survives a restart.
	f = f.reopen(false)
	if c := describeTopic(f, "ac")["retention.ms"]; *c.Value != "1234" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after restart: %s (source %v)", *c.Value, c.Source)
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("iac", 1, map[string]string{"retention.bytes": "5000"})
	set, del := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete
	app, sub := kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract

	wantCode(t, "set", alterIncr(f, "iac", set, "retention.ms", "777", false).ErrorCode, nil)
	cfgs := describeTopic(f, "iac")
	if *cfgs["retention.ms"].Value != "777" || *cfgs["retention.bytes"].Value != "5000" {
		t.Fatalf("after SET: retention.ms %s, retention.bytes %s", *cfgs["retention.ms"].Value, *cfgs["retention.bytes"].Value)
	}
	wantCode(t, "delete", alterIncr(f, "iac", del, "retention.bytes", "", false).ErrorCode, nil)
	if c := describeTopic(f, "iac")["retention.bytes"]; *c.Value != "-1" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after DELETE: retention.bytes %s (source %v)", *c.Value, c.Source)
	}
	wantCode(t, "append", alterIncr(f, "iac", app, "cleanup.policy", "compact", false).ErrorCode, nil)
	if v := *describeTopic(f, "iac")["cleanup.policy"].Value; v != "delete,compact" {
		t.Fatalf("after APPEND: cleanup.policy %q", v)
	}
	wantCode(t, "subtract", alterIncr(f, "iac", sub, "cleanup.policy", "delete", false).ErrorCode, nil)
	if v := *describeTopic(f, "iac")["cleanup.policy"].Value; v != "compact" {
		t.Fatalf("after SUBTRACT: cleanup.policy %q", v)
	}
	res := alterIncr(f, "iac", app, "retention.ms", "5", false)
	wantCode(t, "append to a non-list", res.ErrorCode, kerr.InvalidConfig)
	res = alterIncr(f, "iac", set, "segment.bytes", "ten", false)
	wantCode(t, "bad value", res.ErrorCode, kerr.InvalidConfig)
	if res.ErrorMessage == nil || !strings.Contains(*res.ErrorMessage, "segment.bytes") {
		t.Errorf("bad value message %v does not name the key", res.ErrorMessage)
	}
	wantCode(t, "unknown op", alterIncr(f, "iac", kmsg.IncrementalAlterConfigOp(9), "retention.ms", "5", false).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "validate only", alterIncr(f, "iac", set, "retention.ms", "1", true).ErrorCode, nil)
	if v := *describeTopic(f, "iac")["retention.ms"].Value; v != "777" {
		t.Fatalf("validate_only changed retention.ms to %s", v)
	}
	wantCode(t, "unknown topic", alterIncr(f, "nope", set, "retention.ms", "1", false).ErrorCode, kerr.UnknownTopicOrPartition)

	// segment.bytes applies to the open log from the next append.
	wantCode(t, "set segment.bytes", alterIncr(f, "iac", set, "segment.bytes", "1000", false).ErrorCode, nil)
	f.produceN("iac", 8, 0)
	if n := len(f.b.partition("iac", 0).Log().Segments()); n < 2 {
		t.Fatalf("segment.bytes not applied to the open log: %d segment(s)", n)
	}

	f = f.reopen(true)
	if v := *describeTopic(f, "iac")["cleanup.policy"].Value; v != "compact" {
		t.Fatalf("after crash: cleanup.policy %q", v)
	}
}
