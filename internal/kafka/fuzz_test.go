package kafka

// FuzzHandleRequest decodes arbitrary body bytes as every served key and
// version, hands whatever decodes to Broker.Handle and encodes the response:
// no panics, and deferred replies must finish within a bounded wait.

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"sort"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzBroker opens a broker on dir with its committer running until cleanup.
func fuzzBroker(tb testing.TB, dir string) *Broker {
	tb.Helper()
	meta, err := metadata.Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c := commit.New(commit.Options{})
	b, err := New(Options{
		DataDir: dir, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, AutoCreateTopics: true, DefaultPartitions: 1,
		Defaults: metadata.BrokerDefaults{MessageMaxBytes: 1 << 20, SegmentBytes: 1 << 20,
			SegmentMs: 7 * 24 * 3600 * 1000, RetentionMs: 7 * 24 * 3600 * 1000, RetentionBytes: -1},
	}, meta, c)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		b.Close()
		meta.Close()
	})
	return b
}

// fuzzBound keeps a fuzzed request cheap: waits are capped (a long poll of
// MaxWaitMillis is correct behaviour, not a hang) and requests that would
// open many partitions become ValidateOnly, so a long run cannot exhaust file
// descriptors.
func fuzzBound(b *Broker, req kmsg.Request) {
	full := b.Partitions() >= 64
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, 50)
	case *kmsg.ProduceRequest:
		r.TimeoutMillis = min(r.TimeoutMillis, 2000)
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
}

// handleBytes runs one fuzz input: key and version select the request type,
// body is its encoding.
func handleBytes(t *testing.T, b *Broker, key, version int16, body []byte) {
	v, ok := versions[key]
	if !ok {
		return
	}
	if version < v.min || version > v.max {
		if resp := b.UnsupportedVersion(key, version); resp != nil {
			resp.AppendTo(nil)
		}
		return
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.ReadFrom(body) != nil {
		return
	}
	fuzzBound(b, req)
	reply, err := b.Handle(context.Background(), &wire.Request{Key: key, Version: version, CorrelationID: 1, ClientID: "fz", Body: req})
	if err != nil {
		return // closes the connection: a valid outcome
	}
	resp := reply.Resp
	if reply.Later != nil {
		ch := make(chan kmsg.Response, 1)
		go func() { ch <- reply.Later() }()
		select {
		case resp = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s v%d: deferred reply not ready after 10s", kmsg.NameForKey(key), version)
		}
	}
	if resp != nil {
		if resp.Key() != key {
			t.Fatalf("%s v%d answered with a %s response", kmsg.NameForKey(key), version, kmsg.NameForKey(resp.Key()))
		}
		if resp.GetVersion() != version {
			t.Fatalf("%s v%d answered at version %d", kmsg.NameForKey(key), version, resp.GetVersion())
		}
		resp.AppendTo(nil)
	}
}

func fuzzBatch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), Records: recs}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// fuzzSeeds are realistic requests naming topic "fz" (which exists).
func fuzzSeeds() []kmsg.Request {
	var out []kmsg.Request
	add := func(r kmsg.Request) { out = append(out, r) }

	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 1000
	prt := kmsg.NewProduceRequestTopic()
	prt.Topic = "fz"
	prp := kmsg.NewProduceRequestTopicPartition()
	prp.Records = fuzzBatch(3)
	prt.Partitions = append(prt.Partitions, prp)
	pr.Topics = append(pr.Topics, prt)
	add(pr)

	fr := kmsg.NewPtrFetchRequest()
	fr.ReplicaID, fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = -1, 20, 1, 1<<20
	frt := kmsg.NewFetchRequestTopic()
	frt.Topic = "fz"
	frp := kmsg.NewFetchRequestTopicPartition()
	frp.PartitionMaxBytes, frp.CurrentLeaderEpoch = 1<<20, -1
	frt.Partitions = append(frt.Partitions, frp)
	fr.Topics = append(fr.Topics, frt)
	add(fr)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lot := kmsg.NewListOffsetsRequestTopic()
	lot.Topic = "fz"
	for _, ts := range []int64{-1, -2, -3, 0} {
		lop := kmsg.NewListOffsetsRequestTopicPartition()
		lop.Timestamp, lop.CurrentLeaderEpoch = ts, -1
		lot.Partitions = append(lot.Partitions, lop)
	}
	lo.Topics = append(lo.Topics, lot)
	add(lo)

	md := kmsg.NewPtrMetadataRequest()
	mdt := kmsg.NewMetadataRequestTopic()
	mdt.Topic = kmsg.StringPtr("fz")
	md.Topics = append(md.Topics, mdt)
	add(md)

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fz", "1"
	add(av)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fz2", 1, 1
	ctc := kmsg.NewCreateTopicsRequestTopicConfig()
	ctc.Name, ctc.Value = "retention.ms", kmsg.StringPtr("1000")
	ctt.Configs = append(ctt.Configs, ctc)
	ct.Topics = append(ct.Topics, ctt)
	add(ct)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"fz2"}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("fz2")
	dt.Topics = append(dt.Topics, dtt)
	add(dt)

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.ProducerID, ip.ProducerEpoch = -1, -1
	add(ip)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, typ := range []kmsg.ConfigResourceType{kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, "fz"
		if typ == kmsg.ConfigResourceTypeBroker {
			r.ResourceName = "0"
		}
		dc.Resources = append(dc.Resources, r)
	}
	add(dc)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "fz", 3
	cp.Topics = append(cp.Topics, cpt)
	add(cp)

	add(kmsg.NewPtrDescribeClusterRequest())

	dq := kmsg.NewPtrDescribeQuorumRequest()
	dqt := kmsg.NewDescribeQuorumRequestTopic()
	dqt.Topic = "__cluster_metadata"
	dqt.Partitions = append(dqt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	dq.Topics = append(dq.Topics, dqt)
	add(dq)
	return out
}

func FuzzHandleRequest(f *testing.F) {
	keys := make([]int16, 0, len(versions))
	for k := range versions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, req := range fuzzSeeds() {
		v := versions[req.Key()]
		for ver := v.min; ver <= v.max; ver++ {
			req.SetVersion(ver)
			f.Add(req.Key(), ver, req.AppendTo(nil))
		}
	}
	for _, k := range keys {
		f.Add(k, versions[k].max+1, []byte{})
		f.Add(k, versions[k].min, []byte{0xff, 0xff, 0xff, 0xff})
	}
	f.Add(int16(18), int16(99), []byte{})

	b := fuzzBroker(f, f.TempDir())
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fz", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	ct.SetVersion(7)
	if _, err := b.Handle(context.Background(), &wire.Request{Key: ct.Key(), Version: 7, Body: ct}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		handleBytes(t, b, key, version, body)
	})
}
