package e2e

// Bad input on the Kafka port: every case must be answered with a Kafka error
// code or by closing only the offending connection, leave one recognisable log
// line, and leave every other client (one connected before the bad input, and
// a new one) fully served.

import (
	bin "encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a hand-framed Kafka connection: requests are encoded with kmsg,
// framing (size, header, tags) is done here so tests can also send garbage.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// frame builds a complete request frame for an arbitrary key and version.
func rawFrame(key, version int16, corr int32, flexible bool, body []byte) []byte {
	b := make([]byte, 4, 64+len(body))
	b = bin.BigEndian.AppendUint16(b, uint16(key))
	b = bin.BigEndian.AppendUint16(b, uint16(version))
	b = bin.BigEndian.AppendUint32(b, uint32(corr))
	b = bin.BigEndian.AppendUint16(b, uint16(len("raw-test")))
	b = append(b, "raw-test"...)
	if flexible {
		b = append(b, 0) // request header v2: empty tagged fields
	}
	b = append(b, body...)
	bin.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send frames req at its version and returns the correlation id used.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	r.write(rawFrame(req.Key(), req.GetVersion(), r.corr, req.IsFlexible(), req.AppendTo(nil)))
	return r.corr
}

// readFrame reads one response frame (size-prefixed), with a deadline.
func (r *rawConn) readFrame() ([]byte, error) {
	r.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return nil, err
	}
	n := bin.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r.nc, b)
	return b, err
}

// recv reads the response to a request sent with corr and decodes it at
// version (flexible responses carry a tag byte after the correlation id,
// except ApiVersions, whose response header is always v0).
func (r *rawConn) recv(key, version int16, corr int32) kmsg.Response {
	r.t.Helper()
	b, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("reading response to key %d v%d: %v", key, version, err)
	}
	if len(b) < 4 {
		r.t.Fatalf("response of %d bytes", len(b))
	}
	if got := int32(bin.BigEndian.Uint32(b)); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	b = b[4:]
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() && key != kmsg.ApiVersions.Int16() {
		if len(b) < 1 || b[0] != 0 {
			r.t.Fatalf("expected empty response header tags, got % x", b[:min(len(b), 1)])
		}
		b = b[1:]
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if err := resp.ReadFrom(b); err != nil {
		r.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(key), version, err)
	}
	return resp
}

func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	return r.recv(req.Key(), req.GetVersion(), r.send(req))
}

// expectClosed asserts the broker closes the connection (EOF or reset)
// without sending anything.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	b, err := r.readFrame()
	if err == nil {
		r.t.Fatalf("expected the broker to close the connection, got a %d-byte response", len(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("broker did not close the connection within 15s")
	}
}

// rawBatch encodes a v2 record batch (uncompressed, non-idempotent) holding
// one record per value, with a correct length and CRC-32C.
func rawBatch(values ...[]byte) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, v := range values {
		rec := kmsg.Record{OffsetDelta: int32(i), Value: v}
		enc := rec.AppendTo(nil)
		rec.Length = int32(len(enc) - 1) // Length 0 took one varint byte
		recs = rec.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs,
	}
	b := rb.AppendTo(nil)
	bin.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	bin.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func produceRequest(version int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// latestOffset asks for the log end of topic/partition over the raw conn.
func (r *rawConn) latestOffset(topic string, partition int32) int64 {
	r.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.roundTrip(req).(*kmsg.ListOffsetsResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		r.t.Fatalf("ListOffsets %s-%d: %v", topic, partition, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

func createTopicKmsg(t testing.TB, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(Ctx(t, 15*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// faultEnv is one broker shared by the fault cases plus a client that was
// connected before any bad input.
type faultEnv struct {
	b     *Broker
	cl    *kgo.Client
	topic string
	seq   int
}

// checkServing proves the broker still serves: the pre-existing client
// produces a record and consumes it back, and a brand-new connection gets
// ApiVersions and Metadata answers.
func (e *faultEnv) checkServing(t *testing.T) {
	t.Helper()
	if e.b.Exited() {
		t.Fatalf("broker exited:\n%s", tail(e.b.Logs(), 40))
	}
	e.seq++
	want := fmt.Sprintf("alive-%d", e.seq)
	ctx := Ctx(t, 20*time.Second)
	if err := e.cl.ProduceSync(ctx, &kgo.Record{Topic: e.topic, Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("pre-existing client cannot produce after bad input: %v", err)
	}
	for seen := false; !seen; {
		fs := e.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("pre-existing client did not consume %q: %v", want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen = seen || string(r.Value) == want })
	}
	rc := dialRaw(t, e.b.Addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	if resp := rc.roundTrip(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("new connection: ApiVersions error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	if resp := rc.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		t.Fatalf("new connection: Metadata lists %d brokers", len(resp.Brokers))
	}
}

// expectLogOnce waits until msg appears in the log exactly once more than
// before (the count taken before the bad input).
func expectLogOnce(t *testing.T, b *Broker, msg string, before int) {
	t.Helper()
	CheckFor(t, 10*time.Second, func() error {
		if n := strings.Count(b.Logs(), msg); n != before+1 {
			return fmt.Errorf("log has %d lines with %q, want %d", n, msg, before+1)
		}
		return nil
	})
}

func TestFaultBadInput(t *testing.T) {
	b := StartBroker(t, "--socket-request-max-bytes", "65536", "--message-max-bytes", "60000")
	env := &faultEnv{b: b, topic: "fault"}
	env.cl = b.Client(t, kgo.ConsumeTopics(env.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	createTopicKmsg(t, env.cl, env.topic, 1)
	env.checkServing(t) // the client now holds live connections

	// closeCases: raw bytes after which the broker must close the connection
	// and log msg (substring that identifies this case's log line).
	closeCases := []struct {
		name string
		send func(r *rawConn)
		msg  string
	}{
		{"garbage", func(r *rawConn) { r.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) },
			`"size":1195725856`}, // "GET " read as a size
		{"garbage_body", func(r *rawConn) {
			// A framed Metadata v12 whose body is noise.
			r.write(rawFrame(3, 12, 1, true, []byte{0xff, 0xff, 0xff, 0x7f, 0x01, 0x02}))
		}, `"msg":"closing connection: malformed request body"`},
		{"size_below_8", func(r *rawConn) { r.write([]byte{0, 0, 0, 4, 0, 18, 0, 0}) }, `"size":4,`},
		{"short_header", func(r *rawConn) { r.write([]byte{0, 0, 0, 9, 0, 18, 0, 0, 0, 0, 0, 1, 0}) },
			`"msg":"closing connection: malformed request header"`},
		{"frame_over_max", func(r *rawConn) {
			// Announce 10 MB and send nothing more: the broker must close
			// at once instead of waiting to read (or allocating) it.
			r.write([]byte{0, 0xa0, 0, 0})
		}, `"size":10485760,"max":65536`},
		{"unknown_key", func(r *rawConn) { r.write(rawFrame(999, 0, 1, false, nil)) }, `"api_key":999`},
		{"produce_v2", func(r *rawConn) {
			req := produceRequest(2, env.topic, 0, rawBatch([]byte("x")))
			r.write(rawFrame(0, 2, 1, false, req.AppendTo(nil)))
		}, `"api":"Produce","version":2,`},
		{"fetch_v3", func(r *rawConn) {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(3)
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 100, 1<<20
			r.write(rawFrame(1, 3, 1, false, req.AppendTo(nil)))
		}, `"api":"Fetch","version":3,`},
	}
	for _, c := range closeCases {
		t.Run(c.name, func(t *testing.T) {
			before := strings.Count(b.Logs(), c.msg)
			r := dialRaw(t, b.Addr)
			c.send(r)
			r.expectClosed()
			expectLogOnce(t, b, c.msg, before)
			env.checkServing(t)
		})
	}

	t.Run("truncated_frame", func(t *testing.T) {
		const msg = `"msg":"closing connection: truncated request frame"`
		before := strings.Count(b.Logs(), msg)
		r := dialRaw(t, b.Addr)
		frame := make([]byte, 4+50)
		bin.BigEndian.PutUint32(frame, 100)
		copy(frame[4:], []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0})
		r.write(frame)
		r.nc.(*net.TCPConn).CloseWrite()
		r.expectClosed()
		expectLogOnce(t, b, msg, before)
		env.checkServing(t)
	})

	t.Run("api_versions_v99", func(t *testing.T) {
		r := dialRaw(t, b.Addr)
		r.write(rawFrame(18, 99, 7, true, nil))
		resp := r.recv(18, 0, 7).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("ApiVersions v99: error %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
		}
		var sawProduce, sawAV bool
		for _, k := range resp.ApiKeys {
			sawProduce = sawProduce || k.ApiKey == 0 && k.MinVersion == 0 && k.MaxVersion >= 3 // v0 listed for librdkafka, see 18_api_versions.go
			sawAV = sawAV || k.ApiKey == 18 && k.MinVersion == 0 && k.MaxVersion >= 3
		}
		if !sawProduce || !sawAV {
			t.Fatalf("ApiVersions v99 answer lacks the api list: %+v", resp.ApiKeys)
		}
		// The connection stays usable: the client retries at a version we
		// support.
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(3)
		av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
		if resp := r.roundTrip(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions v3 after v99: error %d", resp.ErrorCode)
		}
		env.checkServing(t)
	})

	// Bad record batches are protocol errors: a per-partition code, the
	// connection stays open, and nothing is appended.
	good := rawBatch([]byte("a"), []byte("bb"), []byte("ccc"))
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	produceCases := []struct {
		name    string
		records []byte
		codes   []int16
	}{
		{"bad_crc", corrupt(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), []int16{kerr.CorruptMessage.Code}},
		{"length_too_long", corrupt(func(b []byte) []byte {
			bin.BigEndian.PutUint32(b[8:], uint32(len(b)-12+5))
			return b
		}), []int16{kerr.InvalidRecord.Code, kerr.CorruptMessage.Code}},
		{"length_too_short", corrupt(func(b []byte) []byte {
			bin.BigEndian.PutUint32(b[8:], uint32(len(b)-12-3))
			return b
		}), []int16{kerr.InvalidRecord.Code, kerr.CorruptMessage.Code}},
		{"magic_1", corrupt(func(b []byte) []byte { b[16] = 1; return b }),
			[]int16{kerr.UnsupportedForMessageFormat.Code, kerr.CorruptMessage.Code}},
		{"good_then_bad", append(append([]byte(nil), good...), corrupt(func(b []byte) []byte { b[30] ^= 1; return b })...),
			[]int16{kerr.CorruptMessage.Code}},
	}
	for _, c := range produceCases {
		t.Run(c.name, func(t *testing.T) {
			const msg = `"msg":"produce rejected"`
			before := strings.Count(b.Logs(), msg)
			r := dialRaw(t, b.Addr)
			end := r.latestOffset(env.topic, 0)
			resp := r.roundTrip(produceRequest(9, env.topic, 0, c.records)).(*kmsg.ProduceResponse)
			code := resp.Topics[0].Partitions[0].ErrorCode
			ok := false
			for _, want := range c.codes {
				ok = ok || code == want
			}
			if !ok {
				t.Fatalf("produce %s: error %v (%d), want one of %v", c.name, kerr.ErrorForCode(code), code, c.codes)
			}
			if got := r.latestOffset(env.topic, 0); got != end {
				t.Fatalf("rejected produce moved the log end from %d to %d", end, got)
			}
			expectLogOnce(t, b, msg, before)
			// Same connection still works: a valid batch is accepted at the
			// log end.
			resp = r.roundTrip(produceRequest(9, env.topic, 0, rawBatch([]byte("ok")))).(*kmsg.ProduceResponse)
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != end {
				t.Fatalf("valid produce after a rejected one: error %d base %d, want base %d", p.ErrorCode, p.BaseOffset, end)
			}
			env.checkServing(t)
		})
	}
}
