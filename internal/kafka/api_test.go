package kafka

import (
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// belowKmsgMax lists the served keys whose newest version this broker
// deliberately does not serve although kmsg knows it, each with the reason
// (also in README's API table). A key behind kmsg's max and not listed fails
// TestServedAtKmsgMax: serve the new version or explain here why not.
var belowKmsgMax = map[int16]string{
	// (none today)
}

// TestServedAtKmsgMax: every served key is served up to the newest version
// kmsg (and so this code) knows, unless explicitly exempted above; an
// exemption that no longer applies fails too.
func TestServedAtKmsgMax(t *testing.T) {
	for key, av := range versions {
		kmax := kmsg.RequestForKey(key).MaxVersion()
		why, exempt := belowKmsgMax[key]
		switch {
		case av.max > kmax:
			t.Errorf("%s: served up to v%d, kmsg knows only v%d", kmsg.NameForKey(key), av.max, kmax)
		case av.max < kmax && !exempt:
			t.Errorf("%s: served up to v%d, kmsg knows v%d: serve it or add it to belowKmsgMax with the reason", kmsg.NameForKey(key), av.max, kmax)
		case av.max == kmax && exempt:
			t.Errorf("%s: exempted (%s) but served at kmsg's v%d: drop the exemption", kmsg.NameForKey(key), why, kmax)
		}
	}
	for key := range belowKmsgMax {
		if _, ok := versions[key]; !ok {
			t.Errorf("belowKmsgMax lists %s, which is not served", kmsg.NameForKey(key))
		}
	}
}

func withGroups(t *testing.T, f *brokerFixture) *group.Coordinator {
	t.Helper()
	return f.openGroups(group.Options{OffsetsRetention: time.Hour})
}

// commitByID sends a standalone OffsetCommit v10 of offset for partition 0
// of the topic with id and returns the partition's code and the response
// topic's id.
func commitByID(f *brokerFixture, gid string, id [16]byte, offset int64) (int16, [16]byte) {
	f.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = gid, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	st := f.do(req, 10).(*kmsg.OffsetCommitResponse).Topics[0]
	return st.Partitions[0].ErrorCode, st.TopicID
}

// fetchByID sends OffsetFetch v10 for gid: partition 0 of each id, or every
// committed topic when ids is nil.
func fetchByID(f *brokerFixture, gid string, ids ...[16]byte) []kmsg.OffsetFetchResponseGroupTopic {
	f.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = gid
	for _, id := range ids {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.TopicID, rt.Partitions = id, []int32{0}
		rg.Topics = append(rg.Topics, rt)
	}
	req.Groups = append(req.Groups, rg)
	resp := f.do(req, 10).(*kmsg.OffsetFetchResponse)
	wantCode(f.t, "OffsetFetch v10 group", resp.Groups[0].ErrorCode, nil)
	return resp.Groups[0].Topics
}

// TestOffsetsByTopicID: OffsetCommit v10, OffsetFetch v10 and
// TxnOffsetCommit v6 name topics by id; unknown ids answer UNKNOWN_TOPIC_ID;
// offsets committed by id are the ones fetched by name and back.
func TestOffsetsByTopicID(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.createTopic("u", 1, nil)
	withGroups(t, f)
	id, idU := f.meta.Image().Topics["t"].ID, f.meta.Image().Topics["u"].ID
	unknown := [16]byte{0xde, 0xad}

	code, rid := commitByID(f, "g", id, 7)
	wantCode(t, "commit by id", code, nil)
	if rid != id {
		t.Fatalf("commit response names topic %x, want %x", rid, id)
	}
	code, rid = commitByID(f, "g", unknown, 7)
	wantCode(t, "commit unknown id", code, kerr.UnknownTopicID)
	if rid != unknown {
		t.Fatalf("commit response names topic %x, want the unknown id", rid)
	}
	if code, off := f.offsetFetchStable(9, "g", false); code != 0 || off != 7 {
		t.Fatalf("fetch by name after commit by id: offset %d (%v)", off, kerr.ErrorForCode(code))
	}

	// By id: known, unknown (in request order), and every committed topic.
	got := fetchByID(f, "g", unknown, id)
	if len(got) != 2 || got[0].TopicID != unknown || got[1].TopicID != id {
		t.Fatalf("fetch by id: %+v", got)
	}
	wantCode(t, "fetch unknown id", got[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	if sp := got[1].Partitions[0]; sp.ErrorCode != 0 || sp.Offset != 7 {
		t.Fatalf("fetch by id: offset %d (%v)", sp.Offset, kerr.ErrorForCode(sp.ErrorCode))
	}
	if all := fetchByID(f, "g"); len(all) != 1 || all[0].TopicID != id || all[0].Partitions[0].Offset != 7 {
		t.Fatalf("fetch all by id: %+v", all)
	}

	// TxnOffsetCommit v6: the unknown id is refused, the known one staged
	// and visible once the transaction commits.
	withTxn(t, f)
	pid, epoch := f.initTxn("x")
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "x", pid, epoch, "g"
	wantCode(t, "AddOffsetsToTxn", f.do(ao, 3).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = "x", "g", pid, epoch, -1
	for _, tid := range [][16]byte{unknown, idU} {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.TopicID = tid
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = 3
		rt.Partitions = append(rt.Partitions, rp)
		tc.Topics = append(tc.Topics, rt)
	}
	tr := f.do(tc, 6).(*kmsg.TxnOffsetCommitResponse)
	if tr.Topics[0].TopicID != unknown || tr.Topics[1].TopicID != idU {
		t.Fatalf("TxnOffsetCommit v6 response topics %+v", tr.Topics)
	}
	wantCode(t, "txn commit unknown id", tr.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	wantCode(t, "txn commit by id", tr.Topics[1].Partitions[0].ErrorCode, nil)
	wantCode(t, "EndTxn", f.endTxn("x", pid, epoch, true), nil)
	got = fetchByID(f, "g", idU)
	if sp := got[0].Partitions[0]; sp.ErrorCode != 0 || sp.Offset != 3 {
		t.Fatalf("transactional offset by id: %d (%v)", sp.Offset, kerr.ErrorForCode(sp.ErrorCode))
	}
}
