package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zcFixture is a broker with data for zero-copy tests: topic "a" (3
// partitions, several segments in partition 0, batches large and small,
// partition 2 empty) and topic "b" (1 partition).
func zcFixture(t *testing.T) *brokerFixture {
	t.Helper()
	f := newFixture(t)
	f.createTopic("a", 3, map[string]string{"segment.bytes": "60000"})
	f.createTopic("b", 1, nil)
	for i := range 8 {
		spec := plainBatch(20)
		spec.valueSize = 1000 + 200*i // 20-36 KB: above MinSendfile
		f.mustProduce("a", 0, makeRecordBatch(t, spec))
		f.mustProduce("a", 1, makeRecordBatch(t, plainBatch(3)))
	}
	f.mustProduce("b", 0, makeRecordBatch(t, plainBatch(5)))
	if n := len(f.b.partition("a", 0).Log().Segments()); n < 3 {
		t.Fatalf("want several segments, got %d", n)
	}
	return f
}

// zcRequest fetches a-0..2, a-7 (missing), b-0 and an unknown topic from
// offset 0, by name or (v13+) by id.
func zcRequest(f *brokerFixture, v int16, maxBytes int32, committed bool) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(v)
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = maxBytes, 0, 0
	if committed {
		req.IsolationLevel = 1
	}
	add := func(name string, parts ...int32) {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = name
		if t, ok := f.meta.Image().Topics[name]; ok {
			rt.TopicID = t.ID
		} else {
			rt.TopicID = [16]byte{7}
		}
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	add("a", 0, 1, 2, 7)
	add("b", 0)
	add("nosuch", 0)
	return req
}

// roundTrip writes req's frame to c and returns the response frame (after
// the size).
func roundTrip(t *testing.T, c net.Conn, req kmsg.Request, corr int32) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(requestFrame(req, corr)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, frame); err != nil {
		t.Fatal(err)
	}
	return frame
}

// tcpConn serves f's broker on a loopback TCP connection (the zero-copy
// path) and returns the client side.
func tcpConn(t *testing.T, f *brokerFixture) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		wire.Serve(ctx, nc, f.b, wire.Options{MaxRequestBytes: 1 << 20})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cancel(); <-served })
	return c
}

// Every Fetch version answers the same bytes on a TCP connection (batches
// sent from the files, with sendfile or copied by size) as on a pipe (read
// into memory and encoded by kmsg), and the answer decodes.
func TestFetchZeroCopyMatchesCopyAllVersions(t *testing.T) {
	f := zcFixture(t)
	tcp := tcpConn(t, f)
	pipe, _ := serveConn(t, f.b)
	old := wire.MinSendfile
	defer func() { wire.MinSendfile = old }()
	corr := int32(0)
	for _, minSendfile := range []int64{0, 16 << 10, 1 << 40} {
		wire.MinSendfile = minSendfile
		for v := int16(4); v <= 18; v++ {
			for _, maxBytes := range []int32{1 << 30, 70000, 1} {
				for _, committed := range []bool{false, true} {
					corr++
					req := zcRequest(f, v, maxBytes, committed)
					got := roundTrip(t, tcp, req, corr)
					want := roundTrip(t, pipe, req, corr)
					if !bytes.Equal(got, want) {
						t.Fatalf("v%d max %d committed %v sendfile>=%d: zero-copy frame (%d bytes) differs from the copy (%d bytes)",
							v, maxBytes, committed, minSendfile, len(got), len(want))
					}
					resp := kmsg.NewPtrFetchResponse()
					resp.SetVersion(v)
					hdr := 4
					if v >= 12 {
						hdr = 5
					}
					if err := resp.ReadFrom(got[hdr:]); err != nil {
						t.Fatalf("v%d: decode: %v", v, err)
					}
					if recs := resp.Topics[0].Partitions[0].RecordBatches; len(recs) < 20000 {
						t.Fatalf("v%d max %d: a-0 returned %d bytes", v, maxBytes, len(recs))
					}
				}
			}
		}
	}
}

// randomResponse fills every field AppendVectored encodes with random
// values; files holds ranges for some partitions (whose RecordBatches stay
// empty).
func randomResponse(rng *rand.Rand, v int16, ranges [][]storage.FileRange) (*kmsg.FetchResponse, [][]storage.FileRange) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(v)
	resp.ThrottleMillis, resp.ErrorCode, resp.SessionID = rng.Int32(), int16(rng.IntN(100)), rng.Int32()
	var files [][]storage.FileRange
	for ti := range 1 + rng.IntN(3) {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = string(rune('a'+ti)) + string(make([]byte, rng.IntN(40)))
		st.TopicID = [16]byte{byte(rng.Uint32()), 1, 2}
		for pi := range rng.IntN(4) {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition, sp.ErrorCode = int32(pi), int16(rng.IntN(5))
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = rng.Int64(), rng.Int64(), rng.Int64()
			sp.PreferredReadReplica = rng.Int32()
			switch rng.IntN(3) {
			case 1:
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			case 2:
				for range 1 + rng.IntN(3) {
					a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					a.ProducerID, a.FirstOffset = rng.Int64(), rng.Int64()
					sp.AbortedTransactions = append(sp.AbortedTransactions, a)
				}
			}
			var fs []storage.FileRange
			switch rng.IntN(4) {
			case 0:
				sp.RecordBatches = nil
			case 1:
				sp.RecordBatches = []byte{}
			case 2:
				sp.RecordBatches = bytes.Repeat([]byte{byte(pi)}, rng.IntN(300))
			case 3:
				sp.RecordBatches = []byte{}
				fs = ranges[rng.IntN(len(ranges))]
			}
			files = append(files, fs)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, files
}

// AppendVectored encodes exactly what kmsg encodes for every version, with
// every field it covers set at random; a response with a field it does not
// cover is materialized instead.
func TestFetchReplyEncodingEveryField(t *testing.T) {
	f := zcFixture(t)
	log := f.b.partition("a", 0).Log()
	var ranges [][]storage.FileRange
	for _, off := range []int64{0, 40, 100} {
		rs, _, _, err := log.ReadFile(off, 50000, log.LogEndOffset(), nil)
		if err != nil || len(rs) == 0 {
			t.Fatalf("ReadFile %d: %v", off, err)
		}
		defer storage.ReleaseRanges(rs)
		ranges = append(ranges, rs)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for v := int16(4); v <= 18; v++ {
		for range 50 {
			resp, files := randomResponse(rng, v, ranges)
			got := (&fetchReply{FetchResponse: resp, files: files}).AppendTo(nil)
			k := 0
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					for _, fr := range files[k] {
						resp.Topics[i].Partitions[j].RecordBatches, _ = fr.AppendTo(resp.Topics[i].Partitions[j].RecordBatches)
					}
					k++
				}
			}
			if want := resp.AppendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("v%d: vectored encoding differs from kmsg's (%d vs %d bytes)", v, len(got), len(want))
			}
		}
	}
	// A tagged field the hand encoding does not cover: read into memory.
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(18)
	st := kmsg.NewFetchResponseTopic()
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.CurrentLeader.LeaderID = 1
	st.Partitions = append(st.Partitions, sp)
	resp.Topics = append(resp.Topics, st)
	rs, _, _, _ := log.ReadFile(0, 1000, log.LogEndOffset(), nil)
	out := newFetchReply(resp, [][]storage.FileRange{rs})
	if _, vec := out.(wire.Vectored); vec || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("response with CurrentLeader: vectored %v, %d record bytes", vec, len(resp.Topics[0].Partitions[0].RecordBatches))
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// A zero-copy reply keeps its segment files readable while retention
// deletes them, and leaves no descriptor open once released; long polls
// and dropped replies release what they read too.
func TestFetchReplyOutlivesRetention(t *testing.T) {
	f := zcFixture(t)
	req := zcRequest(f, 12, 1<<30, false)
	plan, _ := f.b.planFetch(req, 12)
	// Partitions open on first use: read once so every one the request
	// names is open before counting descriptors.
	want, _ := f.b.fetchOnce(plan.parts, req.MaxBytes, 12, false)
	before := openFDs(t)
	results, _ := f.b.fetchOnce(plan.parts, req.MaxBytes, 12, true)
	reply, ok := f.b.fetchResponse(req, 12, plan, results).(*fetchReply)
	if !ok {
		t.Fatal("zero-copy fetch did not make a vectored reply")
	}
	p := f.b.partition("a", 0)
	segs := p.Log().Segments()
	if sp := f.deleteRecords("a", 0, segs[len(segs)-1].Base); sp.ErrorCode != 0 {
		t.Fatalf("delete records: %d", sp.ErrorCode)
	}
	if n := len(p.Log().Segments()); n != 1 {
		t.Fatalf("%d segments left, want 1", n)
	}
	if n := openFDs(t); n != before {
		t.Fatalf("%d descriptors, %d before: deleted segments' files closed while a reply holds them", n, before)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	if err := resp.ReadFrom(reply.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0].Partitions[0].RecordBatches; !bytes.Equal(got, want[0].resp.RecordBatches) {
		t.Fatalf("records after retention: %d bytes, want %d", len(got), len(want[0].resp.RecordBatches))
	}
	reply.Release()
	if n := openFDs(t); n >= before {
		// The deleted segments' descriptors are gone now (fewer than
		// before: they were open then).
		t.Fatalf("%d descriptors after release, %d before deleting segments", n, before)
	}

	// Long polls that end without enough bytes, and replies to a client
	// that left, release their ranges: no descriptor count grows.
	before = openFDs(t)
	c := tcpConn(t, f)
	for i := range 5 {
		lp := zcRequest(f, 12, 1<<30, false)
		lp.MinBytes, lp.MaxWaitMillis = 1<<30, 30
		roundTrip(t, c, lp, int32(i))
	}
	if n := openFDs(t); n != before+2 { // the connection's two ends
		t.Fatalf("%d descriptors after long polls, want %d", n, before+2)
	}
}
