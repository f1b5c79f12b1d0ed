package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listOffsetsV0 sends a ListOffsets v0 (as sarama does for Kafka < 0.10.1,
// e.g. Burrow) and returns the partition's answer.
func (f *brokerFixture) listOffsetsV0(topic string, ts int64, maxNum int32) kmsg.ListOffsetsResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.MaxNumOffsets = ts, maxNum
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Through the wire codec at v0: what sarama sends is what we decode.
	raw := req.AppendTo(nil)
	back := kmsg.NewPtrListOffsetsRequest()
	back.SetVersion(0)
	if err := back.ReadFrom(raw); err != nil {
		f.t.Fatal(err)
	}
	return f.do(back, 0).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
}

// TestListOffsetsV0: Kafka 0.10's offsets-before semantics over segment
// base offsets (see 02_list_offsets.go): latest and earliest with
// MaxNumOffsets, timestamps against each segment's largest timestamp, the
// log start after DeleteRecords, unknown topics.
func TestListOffsetsV0(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{"segment.bytes": "100"}) // every batch rolls
	f.createTopic("empty", 1, nil)
	base := time.Now().Add(-time.Hour).UnixMilli()
	// Segments [0,2) max ts base+1, [2,5) base+12, active [5,6) base+20.
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 2, pid: -1, epoch: -1, seq: -1, ts: base}))
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 3, pid: -1, epoch: -1, seq: -1, ts: base + 10}))
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 1, pid: -1, epoch: -1, seq: -1, ts: base + 20}))
	tests := []struct {
		name   string
		topic  string
		ts     int64
		maxNum int32
		want   []int64
	}{
		{"latest, one (what sarama asks)", "t", -1, 1, []int64{6}},
		{"latest, all", "t", -1, 10, []int64{6, 5, 2, 0}},
		{"latest, two", "t", -1, 2, []int64{6, 5}},
		{"earliest, one", "t", -2, 1, []int64{0}},
		{"earliest, many", "t", -2, 10, []int64{0}},
		{"timestamp inside the second segment's range", "t", base + 15, 10, []int64{2, 0}},
		{"timestamp equal to a segment's max", "t", base + 12, 1, []int64{2}},
		{"timestamp before everything", "t", base, 10, []int64{}},
		{"timestamp in the future", "t", time.Now().Add(time.Hour).UnixMilli(), 10, []int64{6, 5, 2, 0}},
		{"no offsets asked", "t", -1, 0, []int64{}},
		{"max timestamp (-3) is not a v0 value", "t", -3, 10, []int64{}},
		{"empty partition latest", "empty", -1, 5, []int64{0}},
		{"empty partition earliest", "empty", -2, 5, []int64{0}},
	}
	for _, tt := range tests {
		sp := f.listOffsetsV0(tt.topic, tt.ts, tt.maxNum)
		if sp.ErrorCode != 0 || fmt.Sprint(sp.OldStyleOffsets) != fmt.Sprint(tt.want) {
			t.Errorf("%s: offsets %v (%v), want %v", tt.name, sp.OldStyleOffsets, kerr.ErrorForCode(sp.ErrorCode), tt.want)
		}
	}

	// DeleteRecords to 3: the first segment goes, the second starts at 3.
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "t"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = 3
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	dr.TimeoutMillis = 5000
	wantCode(t, "DeleteRecords", f.do(dr, 2).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode, nil)
	if sp := f.listOffsetsV0("t", -2, 1); fmt.Sprint(sp.OldStyleOffsets) != "[3]" {
		t.Errorf("earliest after DeleteRecords: %v", sp.OldStyleOffsets)
	}
	if sp := f.listOffsetsV0("t", -1, 10); fmt.Sprint(sp.OldStyleOffsets) != "[6 5 3]" {
		t.Errorf("latest after DeleteRecords: %v", sp.OldStyleOffsets)
	}

	wantCode(t, "unknown topic", f.listOffsetsV0("nope", -1, 1).ErrorCode, kerr.UnknownTopicOrPartition)
}
