package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInternalTopicRefusals: __consumer_offsets is listed as internal and
// readable, and every client write to it is refused with Kafka's code while
// nothing is written; a Metadata request naming another internal topic does
// not create it as an ordinary topic.
func TestInternalTopicRefusals(t *testing.T) {
	f := newFixture(t)
	g := f.openGroups(group.Options{})
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, _ := g.CommitOffsets("app", group.MemberRef{}, -1, []group.Commit{{TP: group.TP{Topic: OffsetsTopic, Partition: 0}, Offset: 0}})(c); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	ends := func() map[int32]int64 {
		out := map[int32]int64{}
		for i := range int32(5) {
			out[i] = f.listOffset(OffsetsTopic, i, -1).Offset
		}
		return out
	}
	before := ends()

	// Metadata for all topics and by name: listed, internal.
	for _, req := range []*kmsg.MetadataRequest{kmsg.NewPtrMetadataRequest(), func() *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(OffsetsTopic)
		r.Topics = append(r.Topics, rt)
		return r
	}()} {
		var found bool
		for _, mt := range f.do(req, 12).(*kmsg.MetadataResponse).Topics {
			if mt.Topic != nil && *mt.Topic == OffsetsTopic {
				found = mt.IsInternal && len(mt.Partitions) == 5 && mt.ErrorCode == 0
			}
		}
		if !found {
			t.Fatalf("metadata (%d topics asked) does not list %s as internal", len(req.Topics), OffsetsTopic)
		}
	}

	// Produce: INVALID_TOPIC_EXCEPTION.
	if sp := f.produce(OffsetsTopic, 0, makeRecordBatch(t, plainBatch(1))); sp.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: %v", OffsetsTopic, kerr.ErrorForCode(sp.ErrorCode))
	}
	// CreateTopics of the name: it exists.
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = OffsetsTopic, 3, 1
	ct.Topics = append(ct.Topics, rt)
	if code := f.do(ct, 7).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.TopicAlreadyExists.Code {
		t.Fatalf("create %s: %v", OffsetsTopic, kerr.ErrorForCode(code))
	}
	// DeleteTopics and CreatePartitions: refused.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr(OffsetsTopic)
	dt.Topics = append(dt.Topics, dtt)
	dt.TopicNames = append(dt.TopicNames, OffsetsTopic)
	if code := f.do(dt, 6).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code == 0 {
		t.Fatal("DeleteTopics of an internal topic succeeded")
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = OffsetsTopic, 8
	cp.Topics = append(cp.Topics, cpt)
	if code := f.do(cp, 3).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code == 0 {
		t.Fatal("CreatePartitions of an internal topic succeeded")
	}
	if after := ends(); len(after) != len(before) || func() bool {
		for p, e := range before {
			if after[p] != e {
				return true
			}
		}
		return false
	}() {
		t.Fatalf("log ends moved: %v -> %v", before, after)
	}
	if n := f.b.meta.Image().Topics[OffsetsTopic].Partitions; n != 5 {
		t.Fatalf("%s has %d partitions", OffsetsTopic, n)
	}

	// Metadata by name for __transaction_state, with auto-create on.
	mr := kmsg.NewPtrMetadataRequest()
	mrt := kmsg.NewMetadataRequestTopic()
	mrt.Topic = kmsg.StringPtr(TxnStateTopic)
	mr.Topics = append(mr.Topics, mrt)
	mr.AllowAutoTopicCreation = true
	f.do(mr, 12)
	if ts := f.b.meta.Image().Topics[TxnStateTopic]; ts != nil && !ts.Internal {
		t.Fatalf("Metadata auto-created %s as an ordinary topic", TxnStateTopic)
	}
}

// TestInternalTopicCommitRecords: an OffsetCommit lands in the group's
// partition of __consumer_offsets in Kafka's schema, readable by Fetch.
func TestInternalTopicCommitRecords(t *testing.T) {
	f := newFixture(t)
	f.createTopic("orders", 1, nil)
	g := f.openGroups(group.Options{})
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, _ := g.CommitOffsets("billing", group.MemberRef{}, -1, []group.Commit{{TP: group.TP{Topic: "orders", Partition: 0}, Offset: 42, Metadata: "m"}})(c); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	p := int32(javaPartition("billing", 5))
	fp := f.fetch(OffsetsTopic, p, 0, 1<<20)
	if fp.ErrorCode != 0 || fp.HighWatermark != 1 {
		t.Fatalf("fetch partition %d: %v hwm %d", p, kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark)
	}
	var found bool
	for _, b := range batchRecords(t, fp.RecordBatches) {
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if k.ReadFrom(b.Key) != nil || v.ReadFrom(b.Value) != nil {
			t.Fatalf("undecodable record %x=%x", b.Key, b.Value)
		}
		found = k.Group == "billing" && k.Topic == "orders" && k.Partition == 0 && v.Offset == 42 && v.Metadata == "m" && v.Version == 3
	}
	if !found {
		t.Fatal("commit record not found")
	}
}

// javaPartition restates Kafka's mapping for the test: abs(hashCode) % n.
func javaPartition(s string, n int) int {
	var h int32
	for _, r := range s { // ASCII here
		h = 31*h + int32(r)
	}
	return int(h&0x7fffffff) % n
}

// batchRecords decodes every record of fetched batches (copies).
func batchRecords(t *testing.T, raw []byte) []kmsg.Record {
	t.Helper()
	var out []kmsg.Record
	err := storage.SplitBatches(raw, func(b []byte) error {
		return storage.DecodeRecords(b, storage.Decompress, func(r *kmsg.Record) error {
			out = append(out, kmsg.Record{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
