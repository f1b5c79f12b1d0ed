package wire_test

// FuzzFrame feeds arbitrary bytes, as the client side of a connection, into
// wire.Serve backed by a real broker: nothing may panic, and Serve must
// return once the client has closed, whatever was pending (long polls,
// produce acks).

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/kafka"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newBroker wires a broker like server.New does, on dir, with the committer
// running until cleanup.
func newBroker(tb testing.TB, dir string) *kafka.Broker {
	tb.Helper()
	meta, err := metadata.Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	committer := commit.New(commit.Options{})
	b, err := kafka.New(kafka.Options{
		DataDir: dir, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092,
		AutoCreateTopics: true, DefaultPartitions: 1,
		Defaults: metadata.BrokerDefaults{MessageMaxBytes: 1 << 20, SegmentBytes: 1 << 20,
			SegmentMs: 7 * 24 * 3600 * 1000, RetentionMs: 7 * 24 * 3600 * 1000, RetentionBytes: -1},
	}, meta, committer)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { committer.Run(ctx); close(done) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		b.Close()
		meta.Close()
	})
	return b
}

// guarded keeps a fuzzed broker small: requests that would create many
// topics or partitions are turned into ValidateOnly ones (still decoded,
// validated and answered), so a long fuzz run cannot exhaust file
// descriptors or disk.
type guarded struct{ *kafka.Broker }

const maxFuzzPartitions = 64

func (g guarded) Handle(ctx context.Context, req *wire.Request) (wire.Reply, error) {
	full := g.Partitions() >= maxFuzzPartitions
	switch r := req.Body.(type) {
	case *kmsg.CreateTopicsRequest:
		n := 0
		for _, t := range r.Topics {
			n += max(int(t.NumPartitions), 1) + len(t.ReplicaAssignment)
		}
		if full || n > 8 {
			r.ValidateOnly = true
		}
	case *kmsg.CreatePartitionsRequest:
		for _, t := range r.Topics {
			if full || t.Count > 8 {
				r.ValidateOnly = true
			}
		}
	case *kmsg.MetadataRequest:
		if full {
			r.AllowAutoTopicCreation = false
		}
	}
	return g.Broker.Handle(ctx, req)
}

// frame encodes req as a complete request frame.
func frame(req kmsg.Request, corr int32) []byte {
	b := make([]byte, 4, 128)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, "fz"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// batch is a valid uncompressed v2 record batch of n records.
func batch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), Records: recs}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func seedRequests() []kmsg.Request {
	var out []kmsg.Request
	for _, v := range []int16{0, 3, 4} {
		r := kmsg.NewPtrApiVersionsRequest()
		r.SetVersion(v)
		r.ClientSoftwareName, r.ClientSoftwareVersion = "fz", "1"
		out = append(out, r)
	}
	for _, v := range []int16{1, 9, 12} {
		r := kmsg.NewPtrMetadataRequest()
		r.SetVersion(v)
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr("fz")
		r.Topics = append(r.Topics, t)
		out = append(out, r)
	}
	for _, v := range []int16{3, 9} {
		for _, acks := range []int16{-1, 0, 1} {
			r := kmsg.NewPtrProduceRequest()
			r.SetVersion(v)
			r.Acks, r.TimeoutMillis = acks, 1000
			t := kmsg.NewProduceRequestTopic()
			t.Topic = "fz"
			p := kmsg.NewProduceRequestTopicPartition()
			p.Records = batch(3)
			t.Partitions = append(t.Partitions, p)
			r.Topics = append(r.Topics, t)
			out = append(out, r)
		}
	}
	for _, v := range []int16{4, 12, 16} {
		for _, wait := range []int32{0, 300, 1 << 30} { // the last long-polls for 12 days
			r := kmsg.NewPtrFetchRequest()
			r.SetVersion(v)
			r.ReplicaID, r.MaxWaitMillis, r.MinBytes, r.MaxBytes = -1, wait, 1<<20, 1<<20
			t := kmsg.NewFetchRequestTopic()
			t.Topic = "fz"
			p := kmsg.NewFetchRequestTopicPartition()
			p.PartitionMaxBytes = 1 << 20
			t.Partitions = append(t.Partitions, p)
			r.Topics = append(r.Topics, t)
			out = append(out, r)
		}
	}
	for _, v := range []int16{2, 5, 7} {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.SetVersion(v)
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = "fz2", 1, 1
		r.Topics = append(r.Topics, t)
		out = append(out, r)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(7)
	lot := kmsg.NewListOffsetsRequestTopic()
	lot.Topic = "fz"
	lop := kmsg.NewListOffsetsRequestTopicPartition()
	lop.Timestamp = -1
	lot.Partitions = append(lot.Partitions, lop)
	lo.Topics = append(lo.Topics, lot)
	out = append(out, lo)
	return out
}

func addSeeds(f *testing.F) {
	var all []byte
	for i, req := range seedRequests() {
		fr := frame(req, int32(i))
		f.Add(fr)
		f.Add(fr[:len(fr)/2])                            // truncated
		f.Add(append(append([]byte(nil), fr...), fr...)) // pipelined
		all = append(all, fr...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 4, 0, 18, 0, 0})                            // size < 8
	f.Add([]byte{0, 0xa0, 0, 0})                                      // 10 MB frame
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                             // negative size
	f.Add([]byte{0, 0, 0, 10, 3, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}) // unknown key 999
	f.Add([]byte{0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})  // ApiVersions v99
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
}

// panicLog collects log lines that report a recovered panic.
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *panicLog) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic")) {
		p.mu.Lock()
		p.buf.Write(b)
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *panicLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// serveOnce runs one connection with data as everything the client sends,
// then closes the client and requires Serve to return.
func serveOnce(t *testing.T, h wire.Handler, data []byte) {
	cli, srv := net.Pipe()
	done := make(chan struct{})
	// wire recovers handler panics (closing the connection and logging the
	// stack); for the fuzzer any such log line is a crash.
	var panics panicLog
	lg := slog.New(slog.NewTextHandler(&panics, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() {
		defer close(done)
		wire.Serve(context.Background(), srv, h, wire.Options{MaxRequestBytes: 64 << 10, MaxInFlight: 8, Logger: lg})
	}()
	defer func() {
		if msg := panics.String(); msg != "" {
			t.Fatalf("handler panicked:\n%s", msg)
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(io.Discard, cli) }()
	cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
	cli.Write(data) // fails if the broker closed the connection early
	cli.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve did not return within 10s of the client closing (input %d bytes)", len(data))
	}
	wg.Wait()
}

func FuzzFrame(f *testing.F) {
	addSeeds(f)
	b := newBroker(f, f.TempDir())
	h := guarded{b}
	// A topic the seeds produce to and fetch from.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(7)
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fz", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	if _, err := b.Handle(context.Background(), &wire.Request{Key: ct.Key(), Version: 7, Body: ct}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		serveOnce(t, h, data)
	})
}

// TestServeReturnsOnCloseDuringLongPoll: a client that disconnects while its
// fetch long-polls must not keep Serve (and so broker shutdown) waiting for
// the poll's MaxWait.
func TestServeReturnsOnCloseDuringLongPoll(t *testing.T) {
	b := newBroker(t, t.TempDir())
	for _, req := range seedRequests() {
		fr := frame(req, 1)
		start := time.Now()
		serveOnce(t, guarded{b}, fr)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s v%d: Serve took %v after the client closed", kmsg.NameForKey(req.Key()), req.GetVersion(), d)
		}
	}
}

// TestServeAnswersPipelinedInOrder: a sanity check of the harness itself
// over a real loopback socket: pipelined requests are answered in order.
func TestServeAnswersPipelinedInOrder(t *testing.T) {
	b := newBroker(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wire.Serve(context.Background(), nc, guarded{b}, wire.Options{MaxRequestBytes: 1 << 20})
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	reqs := seedRequests()[:6] // ApiVersions and Metadata only: no waits
	var all []byte
	for i, r := range reqs {
		all = append(all, frame(r, int32(100+i))...)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(all); err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		var hdr [8]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != int32(100+i) {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
		if _, err := io.ReadFull(nc, body); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}
