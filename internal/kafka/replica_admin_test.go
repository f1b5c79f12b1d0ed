package kafka

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeLogDirs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("a", 2, nil)
	f.createTopic("b", 1, nil)
	f.mustProduce("a", 1, makeRecordBatch(t, plainBatch(5)))
	for _, v := range []int16{1, 3, 4, 5} {
		resp := f.do(kmsg.NewPtrDescribeLogDirsRequest(), v).(*kmsg.DescribeLogDirsResponse) // null topics: all
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		d := resp.Dirs[0]
		if abs, _ := filepath.Abs(f.dir); d.Dir != abs || d.ErrorCode != 0 {
			t.Errorf("v%d: dir %q error %d", v, d.Dir, d.ErrorCode)
		}
		if v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes) {
			t.Errorf("v%d: total %d usable %d", v, d.TotalBytes, d.UsableBytes)
		}
		sizes := map[string]map[int32]int64{}
		for _, dt := range d.Topics {
			sizes[dt.Topic] = map[int32]int64{}
			for _, dp := range dt.Partitions {
				sizes[dt.Topic][dp.Partition] = dp.Size
			}
		}
		if len(sizes["a"]) != 2 || len(sizes["b"]) != 1 || sizes["a"][1] != f.b.partition("a", 1).Log().Size() || sizes["a"][1] == 0 || sizes["a"][0] != 0 {
			t.Errorf("v%d: sizes %v", v, sizes)
		}
	}
	req := kmsg.NewPtrDescribeLogDirsRequest()
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "a", []int32{1, 7}
	req.Topics = append(req.Topics, rt, kmsg.DescribeLogDirsRequestTopic{Topic: "nope", Partitions: []int32{0}})
	d := f.do(req, 4).(*kmsg.DescribeLogDirsResponse).Dirs[0]
	if len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 1 || d.Topics[0].Partitions[0].Partition != 1 {
		t.Errorf("named partitions: %+v", d.Topics)
	}
}

func TestElectLeaders(t *testing.T) {
	f := newFixture(t)
	f.createTopic("el", 2, nil)
	for _, v := range []int16{0, 1, 2} {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "el", Partitions: []int32{0, 1, 5}}, {Topic: "nope", Partitions: []int32{0}}}
		resp := f.do(req, v).(*kmsg.ElectLeadersResponse)
		want := kerr.ElectionNotNeeded
		if v == 0 {
			want = nil
		}
		ps := resp.Topics[0].Partitions
		wantCode(t, "p0", ps[0].ErrorCode, want)
		wantCode(t, "p1", ps[1].ErrorCode, want)
		wantCode(t, "p5", ps[2].ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "unknown topic", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		all := kmsg.NewPtrElectLeadersRequest() // null: all partitions, none needing election
		if resp := f.do(all, v).(*kmsg.ElectLeadersResponse); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
			t.Errorf("v%d all: %+v", v, resp)
		}
	}
	bad := kmsg.NewPtrElectLeadersRequest()
	bad.ElectionType = 5
	wantCode(t, "bad election type", f.do(bad, 2).(*kmsg.ElectLeadersResponse).ErrorCode, kerr.InvalidRequest)
}

func TestPartitionReassignments(t *testing.T) {
	f := newFixture(t)
	f.createTopic("r", 1, nil)
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{
		{Topic: "r", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{
			{Partition: 0, Replicas: []int32{1}},    // this node: no-op
			{Partition: 0, Replicas: []int32{2}},    // unknown broker
			{Partition: 0, Replicas: []int32{1, 2}}, // more replicas than brokers
			{Partition: 0, Replicas: []int32{}},     // empty
			{Partition: 0, Replicas: nil},           // cancel: nothing in progress
			{Partition: 3, Replicas: []int32{1}},
		}},
		{Topic: "nope", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1}}}},
	}
	for _, v := range []int16{0, 1} {
		resp := f.do(req, v).(*kmsg.AlterPartitionAssignmentsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		want := []*kerr.Error{nil, kerr.InvalidReplicaAssignment, kerr.InvalidReplicaAssignment, kerr.InvalidReplicaAssignment, kerr.NoReassignmentInProgress, kerr.UnknownTopicOrPartition}
		for i, w := range want {
			wantCode(t, "reassign", resp.Topics[0].Partitions[i].ErrorCode, w)
		}
		wantCode(t, "unknown topic", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	}
	list := kmsg.NewPtrListPartitionReassignmentsRequest()
	if resp := f.do(list, 0).(*kmsg.ListPartitionReassignmentsResponse); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Errorf("list all: %+v", resp)
	}
	list.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: "r", Partitions: []int32{0}}}
	if resp := f.do(list, 0).(*kmsg.ListPartitionReassignmentsResponse); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Errorf("list r: %+v", resp)
	}
}

func TestDescribeTopicPartitions(t *testing.T) {
	f := newFixture(t)
	f.createTopic("x", 3, nil)
	f.createTopic("y", 2, nil)
	f.createTopic("z", 1, nil)
	describe := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit, req.Cursor = limit, cursor
		for _, tp := range topics {
			req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: tp})
		}
		return f.do(req, 0).(*kmsg.DescribeTopicPartitionsResponse)
	}
	flat := func(resp *kmsg.DescribeTopicPartitionsResponse) []string {
		var out []string
		for _, dt := range resp.Topics {
			for _, dp := range dt.Partitions {
				out = append(out, *dt.Topic+"-"+string(rune('0'+dp.Partition)))
			}
		}
		return out
	}
	// All topics, no limit.
	resp := describe(0, nil)
	if got := flat(resp); len(got) != 6 || resp.NextCursor != nil {
		t.Fatalf("all: %v, cursor %+v", got, resp.NextCursor)
	}
	x := resp.Topics[0]
	if x.TopicID != [16]byte(f.meta.Image().Topics["x"].ID) || x.Partitions[0].LeaderID != 1 || len(x.Partitions[0].ISR) != 1 {
		t.Errorf("topic x: %+v", x)
	}
	// Paging by 2: x0 x1 | x2 y0 | y1 z0 (cursor ends exactly at a topic end -> next topic 0)
	var pages [][]string
	var cursor *kmsg.DescribeTopicPartitionsRequestCursor
	for range 5 {
		resp := describe(2, cursor)
		pages = append(pages, flat(resp))
		if resp.NextCursor == nil {
			break
		}
		cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	if len(pages) != 3 || pages[0][1] != "x-1" || pages[1][0] != "x-2" || pages[1][1] != "y-0" || pages[2][1] != "z-0" {
		t.Errorf("pages %v", pages)
	}
	// Limit reached at the end of x: the cursor names y-0.
	resp = describe(3, nil)
	if resp.NextCursor == nil || resp.NextCursor.Topic != "y" || resp.NextCursor.Partition != 0 {
		t.Errorf("cursor after x: %+v", resp.NextCursor)
	}
	// Named topics, sorted, with an unknown one.
	resp = describe(0, nil, "z", "nope", "x")
	if len(resp.Topics) != 3 || *resp.Topics[0].Topic != "nope" || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || *resp.Topics[2].Topic != "z" {
		t.Errorf("named: %+v", resp.Topics)
	}
}
