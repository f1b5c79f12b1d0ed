package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch builds a fetch of the given partitions (offset per
// partition) of one topic, MaxWait 0.
func sessionFetch(topic string, id int32, epoch int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SessionID, req.SessionEpoch = id, epoch
	req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for p := int32(0); p < 16; p++ {
			off, ok := offsets[p]
			if !ok {
				continue
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// respParts maps partition -> response for a one-topic fetch response.
func respParts(t *testing.T, resp *kmsg.FetchResponse) map[int32]kmsg.FetchResponseTopicPartition {
	t.Helper()
	out := map[int32]kmsg.FetchResponseTopicPartition{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[rp.Partition] = rp
		}
	}
	return out
}

func TestFetchSessionLifecycle(t *testing.T) {
	f := newFixture(t)
	f.createTopic("s", 3, nil)
	f.mustProduce("s", 0, makeRecordBatch(t, plainBatch(2)))

	// Epoch 0, id 0: a new session, answered in full.
	resp := f.do(sessionFetch("s", 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}), 12).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID == 0 {
		t.Fatalf("create: error %v, session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
	}
	id := resp.SessionID
	if got := respParts(t, resp); len(got) != 3 || len(got[0].RecordBatches) == 0 {
		t.Fatalf("full answer: %d partitions", len(got))
	}

	// Epoch 1: p0 moves on to offset 2; nothing changed anywhere.
	resp = f.do(sessionFetch("s", id, 1, map[int32]int64{0: 2}), 12).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID != id || len(respParts(t, resp)) != 0 {
		t.Fatalf("idle incremental: error %v, session %d, parts %v", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, respParts(t, resp))
	}

	// New data on p1 only: the incremental answer has just p1.
	f.mustProduce("s", 1, makeRecordBatch(t, plainBatch(3)))
	resp = f.do(sessionFetch("s", id, 2, nil), 12).(*kmsg.FetchResponse)
	got := respParts(t, resp)
	if len(got) != 1 || len(got[1].RecordBatches) == 0 || got[1].HighWatermark != 3 {
		t.Fatalf("incremental after produce: %+v", got)
	}

	// Wrong epochs, unknown ids.
	wantCode(t, "replayed epoch", f.do(sessionFetch("s", id, 2, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.InvalidFetchSessionEpoch)
	wantCode(t, "future epoch", f.do(sessionFetch("s", id, 9, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.InvalidFetchSessionEpoch)
	wantCode(t, "bad epoch", f.do(sessionFetch("s", id, -2, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.InvalidFetchSessionEpoch)
	wantCode(t, "unknown id", f.do(sessionFetch("s", id+1, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)
	wantCode(t, "id 0 incremental", f.do(sessionFetch("s", 0, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)

	// Forget p1 (and advance it): more data there is no longer reported.
	req := sessionFetch("s", id, 3, nil)
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = "s", []int32{1}
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	if resp := f.do(req, 12).(*kmsg.FetchResponse); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("forget: %+v", resp)
	}
	f.mustProduce("s", 1, makeRecordBatch(t, plainBatch(1)))
	f.mustProduce("s", 2, makeRecordBatch(t, plainBatch(1)))
	got = respParts(t, f.do(sessionFetch("s", id, 4, nil), 12).(*kmsg.FetchResponse))
	if len(got) != 1 || len(got[2].RecordBatches) == 0 {
		t.Fatalf("after forget: %+v", got)
	}

	// A log start change is news even without records.
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "s"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Partition, drp.Offset = 0, 1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	f.do(dr, 2)
	got = respParts(t, f.do(sessionFetch("s", id, 5, map[int32]int64{2: 1}), 12).(*kmsg.FetchResponse))
	if len(got) != 1 || got[0].LogStartOffset != 1 || len(got[0].RecordBatches) != 0 {
		t.Fatalf("after delete records: %+v", got)
	}

	// Epoch -1 closes the session and answers sessionless, in full.
	resp = f.do(sessionFetch("s", id, -1, map[int32]int64{0: 0, 1: 0}), 12).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(respParts(t, resp)) != 2 {
		t.Fatalf("close: %+v", resp)
	}
	wantCode(t, "closed session", f.do(sessionFetch("s", id, 6, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)
	if n := f.b.sessions.len(); n != 0 {
		t.Errorf("%d sessions left", n)
	}

	// Epoch 0 naming an old id replaces it.
	a := f.do(sessionFetch("s", 0, 0, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse).SessionID
	b := f.do(sessionFetch("s", a, 0, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse).SessionID
	if a == 0 || b == 0 || a == b || f.b.sessions.len() != 1 {
		t.Fatalf("restart: %d -> %d, %d sessions", a, b, f.b.sessions.len())
	}
	wantCode(t, "replaced session", f.do(sessionFetch("s", a, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)

	// Below v7 there are no sessions.
	if resp := f.do(sessionFetch("s", 0, 0, map[int32]int64{0: 0}), 6).(*kmsg.FetchResponse); resp.SessionID != 0 || f.b.sessions.len() != 1 {
		t.Errorf("v6 created a session")
	}
}

func TestFetchSessionEviction(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.MaxFetchSessions = 2 })
	f.createTopic("e", 1, nil)
	create := func() int32 {
		return f.do(sessionFetch("e", 0, 0, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse).SessionID
	}
	a, b := create(), create()
	// Use a: b becomes the least recently used and goes when c comes.
	if resp := f.do(sessionFetch("e", a, 1, nil), 12).(*kmsg.FetchResponse); resp.ErrorCode != 0 {
		t.Fatalf("a: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	c := create()
	if n := f.b.sessions.len(); n != 2 {
		t.Fatalf("%d sessions, want 2 (bounded)", n)
	}
	wantCode(t, "evicted b", f.do(sessionFetch("e", b, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)
	wantCode(t, "a kept", f.do(sessionFetch("e", a, 2, nil), 12).(*kmsg.FetchResponse).ErrorCode, nil)
	wantCode(t, "c kept", f.do(sessionFetch("e", c, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, nil)
}

// TestFetchSessionLongPoll: a parked incremental fetch answers with the
// partition that got data; the epoch advanced exactly once.
func TestFetchSessionLongPoll(t *testing.T) {
	f := newFixture(t)
	f.createTopic("lp", 2, nil)
	id := f.do(sessionFetch("lp", 0, 0, map[int32]int64{0: 0, 1: 0}), 12).(*kmsg.FetchResponse).SessionID
	req := sessionFetch("lp", id, 1, nil)
	req.MaxWaitMillis, req.MinBytes = 10000, 1
	rep := f.handle(req, 12)
	if rep.Later == nil {
		t.Fatal("incremental fetch with no data did not park")
	}
	done := make(chan kmsg.Response, 1)
	go func() { done <- rep.Later() }()
	f.mustProduce("lp", 1, makeRecordBatch(t, plainBatch(2)))
	var resp *kmsg.FetchResponse
	select {
	case r := <-done:
		resp = r.(*kmsg.FetchResponse)
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not answer")
	}
	got := respParts(t, resp)
	if resp.SessionID != id || len(got) != 1 || len(got[1].RecordBatches) == 0 {
		t.Fatalf("long poll answer: session %d, %+v", resp.SessionID, got)
	}
	wantCode(t, "epoch 1 again", f.do(sessionFetch("lp", id, 1, nil), 12).(*kmsg.FetchResponse).ErrorCode, kerr.InvalidFetchSessionEpoch)
	resp = f.do(sessionFetch("lp", id, 2, map[int32]int64{1: 2}), 12).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("epoch 2: %v, %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
	}
}

// TestFetchSessionTopicIDs: from v13 sessions and forgotten topics use ids.
func TestFetchSessionTopicIDs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("ids", 2, nil)
	tid := [16]byte(f.meta.Image().Topics["ids"].ID)
	req := sessionFetch("", 0, 0, map[int32]int64{0: 0, 1: 0})
	req.Topics[0].TopicID = tid
	resp := f.do(req, 13).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID == 0 || len(resp.Topics) != 1 || resp.Topics[0].TopicID != tid || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("v13 create: %+v", resp)
	}
	id := resp.SessionID
	req = sessionFetch("", id, 1, nil)
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.TopicID, ft.Partitions = tid, []int32{0}
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	f.do(req, 13)
	f.mustProduce("ids", 0, makeRecordBatch(t, plainBatch(1)))
	f.mustProduce("ids", 1, makeRecordBatch(t, plainBatch(1)))
	resp = f.do(sessionFetch("", id, 2, nil), 13).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].TopicID != tid || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("v13 incremental: %+v", resp.Topics)
	}
	// An unknown topic id added to the session answers UNKNOWN_TOPIC_ID.
	req = sessionFetch("", id, 3, map[int32]int64{0: 0})
	req.Topics[0].TopicID = [16]byte{9}
	resp = f.do(req, 13).(*kmsg.FetchResponse)
	// (p1 of "ids" is answered again too: the client never moved its offset.)
	var found bool
	for _, rt := range resp.Topics {
		if rt.TopicID == ([16]byte{9}) {
			found = len(rt.Partitions) == 1 && rt.Partitions[0].ErrorCode == kerr.UnknownTopicID.Code
		}
	}
	if !found {
		t.Fatalf("unknown id: %+v", resp.Topics)
	}
}

// TestFetchSessionRotation: under a response size limit, a partition that
// just returned records goes to the back, so the others are not starved.
func TestFetchSessionRotation(t *testing.T) {
	f := newFixture(t)
	f.createTopic("rot", 2, nil)
	f.mustProduce("rot", 0, makeRecordBatch(t, plainBatch(1)))
	f.mustProduce("rot", 0, makeRecordBatch(t, plainBatch(1)))
	f.mustProduce("rot", 1, makeRecordBatch(t, plainBatch(1)))
	req := sessionFetch("rot", 0, 0, map[int32]int64{0: 0, 1: 0})
	req.MaxBytes = 1 // only the response's first batch (KIP-74)
	resp := f.do(req, 12).(*kmsg.FetchResponse)
	got := respParts(t, resp)
	if len(got[0].RecordBatches) == 0 || len(got[1].RecordBatches) != 0 {
		t.Fatalf("full: p0 %d bytes, p1 %d bytes", len(got[0].RecordBatches), len(got[1].RecordBatches))
	}
	req = sessionFetch("rot", resp.SessionID, 1, map[int32]int64{0: 1})
	req.MaxBytes = 1
	got = respParts(t, f.do(req, 12).(*kmsg.FetchResponse))
	if len(got[1].RecordBatches) == 0 || len(got[0].RecordBatches) != 0 {
		t.Fatalf("incremental: p0 %d bytes, p1 %d bytes; want p1 served first", len(got[0].RecordBatches), len(got[1].RecordBatches))
	}
}

// TestFetchSessionsConcurrent: many clients creating, using and losing
// sessions in a small cache (run with -race).
func TestFetchSessionsConcurrent(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.MaxFetchSessions = 4 })
	f.createTopic("cc", 1, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				rep, err := f.b.Handle(context.Background(), &wire.Request{Key: 1, Version: 12, Body: sessionFetch("cc", 0, 0, map[int32]int64{0: 0})})
				if err != nil {
					t.Error(err)
					return
				}
				id := rep.Resp.(*kmsg.FetchResponse).SessionID
				for e := int32(1); e <= 3; e++ {
					req := sessionFetch("cc", id, e, nil)
					req.SetVersion(12)
					rep, err := f.b.Handle(context.Background(), &wire.Request{Key: 1, Version: 12, Body: req})
					if err != nil {
						t.Error(err)
						return
					}
					if c := rep.Resp.(*kmsg.FetchResponse).ErrorCode; c != 0 && c != kerr.FetchSessionIDNotFound.Code {
						t.Errorf("epoch %d: %v", e, kerr.ErrorForCode(c))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := f.b.sessions.len(); n > 4 {
		t.Errorf("%d sessions in a cache of 4", n)
	}
}
