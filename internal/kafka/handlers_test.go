package kafka

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerFixture is a broker over real files in a temp dir: the metadata
// store, a group committer (running its Run loop unless told otherwise) and
// the partition logs.
type brokerFixture struct {
	t    *testing.T
	dir  string
	opts Options
	meta *metadata.Store
	com  *commit.Committer
	b    *Broker

	stopCommitter func()
	closed        bool
}

func testDefaults() metadata.BrokerDefaults {
	return metadata.BrokerDefaults{
		MessageMaxBytes: 1048588, SegmentBytes: 1 << 30, SegmentMs: 7 * 24 * 3600 * 1000,
		RetentionMs: 7 * 24 * 3600 * 1000, RetentionBytes: -1,
	}
}

// openFixture opens a broker in dir. mod may change the options.
func openFixture(t *testing.T, dir string, mod func(*Options)) *brokerFixture {
	t.Helper()
	opts := Options{
		DataDir: dir, NodeID: 1, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092,
		AutoCreateTopics: true, DefaultPartitions: 3, Defaults: testDefaults(),
		BrokerConfigs: []BrokerConfig{
			{Name: "num.partitions", Value: "3", Default: true},
			{Name: "log.dirs", Value: dir},
			{Name: "ssl.key.password", Value: "secret", Sensitive: true},
		},
	}
	if mod != nil {
		mod(&opts)
	}
	meta, err := metadata.Open(dir, nil)
	if err != nil {
		t.Fatalf("metadata.Open: %v", err)
	}
	com := commit.New(commit.Options{})
	b, err := New(opts, meta, com)
	if err != nil {
		meta.Close()
		t.Fatalf("kafka.New: %v", err)
	}
	f := &brokerFixture{t: t, dir: dir, opts: opts, meta: meta, com: com, b: b}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); com.Run(ctx) }()
	var once sync.Once
	f.stopCommitter = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(f.close)
	return f
}

func newFixture(t *testing.T) *brokerFixture { return openFixture(t, t.TempDir(), nil) }

// openGroups creates __consumer_offsets (5 partitions) unless it exists and
// installs a group coordinator on it, closed when the test ends.
func (f *brokerFixture) openGroups(opts group.Options) *group.Coordinator {
	f.t.Helper()
	parts, err := f.b.EnsureInternalTopic(OffsetsTopic, 5)
	if err != nil {
		f.t.Fatal(err)
	}
	opts.DataDir, opts.Offsets = f.dir, parts
	g, err := group.Open(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { g.Close() })
	f.b.SetGroups(g)
	return g
}

// close shuts the broker down cleanly (committer's last round, logs closed,
// producer snapshots written).
func (f *brokerFixture) close() {
	if f.closed {
		return
	}
	f.closed = true
	f.stopCommitter()
	if err := f.b.Close(); err != nil {
		f.t.Errorf("broker Close: %v", err)
	}
	if err := f.meta.Close(); err != nil {
		f.t.Errorf("metadata Close: %v", err)
	}
}

// crash stops the committer and abandons the broker without closing any file,
// like kill -9 after the last fsync round.
func (f *brokerFixture) crash() {
	f.closed = true
	f.stopCommitter()
	// The metadata quorum is closed (its database is locked while open):
	// closing it writes nothing, every change it acknowledged is on disk.
	f.meta.Close()
}

// reopen closes (or, with crash, abandons) the broker and opens a new one on
// the same directory.
func (f *brokerFixture) reopen(crash bool) *brokerFixture {
	if crash {
		f.crash()
	} else {
		f.close()
	}
	return openFixture(f.t, f.dir, func(o *Options) { *o = f.opts })
}

// handle sends req at version v through Broker.Handle.
func (f *brokerFixture) handle(req kmsg.Request, v int16) wire.Reply {
	f.t.Helper()
	req.SetVersion(v)
	rep, err := f.b.Handle(context.Background(), &wire.Request{Key: req.Key(), Version: v, Body: req})
	if err != nil {
		f.t.Fatalf("Handle(%s v%d): %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return rep
}

// do sends req and returns its response, waiting for a deferred one.
func (f *brokerFixture) do(req kmsg.Request, v int16) kmsg.Response {
	f.t.Helper()
	rep := f.handle(req, v)
	resp := resolve(f.t, rep)
	if resp == nil {
		f.t.Fatalf("%s v%d: no response", kmsg.NameForKey(req.Key()), v)
	}
	if resp.GetVersion() != v {
		f.t.Errorf("%s response version %d, want %d", kmsg.NameForKey(req.Key()), resp.GetVersion(), v)
	}
	return resp
}

func resolve(t *testing.T, rep wire.Reply) kmsg.Response {
	t.Helper()
	if rep.Later == nil {
		return rep.Resp
	}
	if rep.Resp != nil {
		t.Fatal("reply has both Resp and Later")
	}
	ch := make(chan kmsg.Response, 1)
	go func() { ch <- rep.Later() }()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("deferred reply did not return in 15s")
		return nil
	}
}

// batchSpec describes an uncompressed v2 batch of n records.
type batchSpec struct {
	n         int
	pid       int64 // -1: not idempotent
	epoch     int16
	seq       int32
	ts        int64 // first timestamp (0: now); record i has ts+i
	valueSize int
	attrs     int16
}

func plainBatch(n int) batchSpec { return batchSpec{n: n, pid: -1, epoch: -1, seq: -1, valueSize: 10} }

// makeRecordBatch builds a valid v2 batch: kmsg encodes records and header,
// the CRC-32C is computed here (as storage/encode.go does).
func makeRecordBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	if s.ts == 0 {
		s.ts = time.Now().UnixMilli()
	}
	var recs []byte
	for i := 0; i < s.n; i++ {
		val := []byte(strings.Repeat(string(rune('a'+i%26)), s.valueSize))
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte(strconv.Itoa(i)), Value: val}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		Length: int32(storage.BatchHeaderSize - 12 + len(recs)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: s.attrs, LastOffsetDelta: int32(s.n - 1), FirstTimestamp: s.ts, MaxTimestamp: s.ts + int64(s.n-1),
		ProducerID: s.pid, ProducerEpoch: s.epoch, FirstSequence: s.seq, NumRecords: int32(s.n), Records: recs,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := storage.ValidateBatch(out); err != nil {
		t.Fatalf("test batch invalid: %v", err)
	}
	return out
}

func produceReq(topic string, partition int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
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

// produce sends one partition's records with acks=-1 at v9 and returns the
// partition's answer.
func (f *brokerFixture) produce(topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	f.t.Helper()
	resp := f.do(produceReq(topic, partition, -1, records), 9).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		f.t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func (f *brokerFixture) mustProduce(topic string, partition int32, records []byte) int64 {
	f.t.Helper()
	sp := f.produce(topic, partition, records)
	if sp.ErrorCode != 0 {
		f.t.Fatalf("produce to %s-%d: %v", topic, partition, kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp.BaseOffset
}

func (f *brokerFixture) createTopic(name string, partitions int32, configs map[string]string) {
	f.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, 7).(*kmsg.CreateTopicsResponse)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		f.t.Fatalf("create topic %s: %v", name, kerr.ErrorForCode(c))
	}
}

func fetchReq(topic string, topicID [16]byte, partition int32, offset int64, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, partMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetch reads without waiting (MaxWait 0) at v12.
func (f *brokerFixture) fetch(topic string, partition int32, offset int64, partMax int32) kmsg.FetchResponseTopicPartition {
	f.t.Helper()
	resp := f.do(fetchReq(topic, [16]byte{}, partition, offset, partMax), 12).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0]
}

// batchOffsets lists (base offset, record count) of each batch in records.
func batchOffsets(t *testing.T, records []byte) [][2]int64 {
	t.Helper()
	var out [][2]int64
	err := storage.SplitBatches(records, func(b []byte) error {
		h, err := storage.ValidateBatch(b)
		if err != nil {
			return err
		}
		out = append(out, [2]int64{h.BaseOffset, int64(h.RecordCount)})
		return nil
	})
	if err != nil {
		t.Fatalf("fetched records do not parse: %v", err)
	}
	return out
}

func (f *brokerFixture) listOffset(topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, 8).(*kmsg.ListOffsetsResponse)
	return resp.Topics[0].Partitions[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wc int16
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// ---------------------------------------------------------------- ApiVersions

func TestApiVersions(t *testing.T) {
	f := newFixture(t)
	for _, v := range []int16{0, 3, 4} {
		resp := f.do(kmsg.NewPtrApiVersionsRequest(), v).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		checkVersionsList(t, resp.ApiKeys)
	}
	// Every advertised key answers through Versions with the same range.
	for k, av := range versions {
		lo, hi, ok := f.b.Versions(k)
		if !ok || lo != av.min || hi != av.max {
			t.Errorf("Versions(%d) = %d, %d, %v", k, lo, hi, ok)
		}
	}
	for k, av := range versions {
		if m := advertisedMin(k); m != av.min && k != kmsg.Produce.Int16() {
			t.Errorf("key %d advertised from v%d, handled from v%d", k, m, av.min)
		}
	}
	if lo, _, _ := f.b.Versions(kmsg.Produce.Int16()); lo != 3 {
		t.Errorf("Produce handled from v%d, want v3 (KIP-896)", lo)
	}
	if _, _, ok := f.b.Versions(kmsg.DescribeACLs.Int16()); ok {
		t.Error("Versions reports DescribeAcls, which is not implemented")
	}

	// A version we do not serve: v0 answer, UNSUPPORTED_VERSION, full list.
	r := f.b.UnsupportedVersion(kmsg.ApiVersions.Int16(), 99)
	resp, ok := r.(*kmsg.ApiVersionsResponse)
	if !ok {
		t.Fatalf("UnsupportedVersion(ApiVersions) = %T", r)
	}
	if resp.GetVersion() != 0 || resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("unsupported ApiVersions: version %d, error %v", resp.GetVersion(), kerr.ErrorForCode(resp.ErrorCode))
	}
	checkVersionsList(t, resp.ApiKeys)
	if r := f.b.UnsupportedVersion(kmsg.Produce.Int16(), 1); r != nil {
		t.Errorf("UnsupportedVersion(Produce v1) = %v, want nil (close the connection)", r)
	}
}

func checkVersionsList(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	if len(keys) != len(versions) {
		t.Errorf("ApiVersions lists %d keys, the table has %d", len(keys), len(versions))
	}
	if !sort.SliceIsSorted(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey }) {
		t.Error("ApiVersions keys not sorted")
	}
	for _, k := range keys {
		v, ok := versions[k.ApiKey]
		if !ok || advertisedMin(k.ApiKey) != k.MinVersion || v.max != k.MaxVersion {
			t.Errorf("ApiVersions key %d: %d-%d, table %+v (present %v)", k.ApiKey, k.MinVersion, k.MaxVersion, v, ok)
		}
	}
}

func TestApiVersionsV5ClusterCheck(t *testing.T) {
	f := newFixture(t)
	cluster := f.meta.Image().ClusterID
	tests := []struct {
		name    string
		cluster *string
		node    int32
		want    *kerr.Error
	}{
		{"neither", nil, -1, nil},
		{"matching", kmsg.StringPtr(cluster), 1, nil},
		{"other cluster", kmsg.StringPtr("other"), 1, kerr.RebootstrapRequired},
		{"other node", kmsg.StringPtr(cluster), 7, kerr.RebootstrapRequired},
		{"only cluster", kmsg.StringPtr(cluster), -1, kerr.InvalidRequest},
		{"only node", nil, 1, kerr.InvalidRequest},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClusterID, req.NodeID = tt.cluster, tt.node
		resp := f.do(req, 5).(*kmsg.ApiVersionsResponse)
		wantCode(t, tt.name, resp.ErrorCode, tt.want)
	}
}

// TestEveryVersionAnswers sends a default (empty) request of every advertised
// key at its lowest and highest version; each must answer without a Go error
// in a response that encodes and decodes at that version.
func TestEveryVersionAnswers(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	for key, av := range versions {
		for _, v := range []int16{av.min, av.max} {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			if fr, ok := req.(*kmsg.FetchRequest); ok {
				fr.MaxWaitMillis = 0
			}
			if pr, ok := req.(*kmsg.ProduceRequest); ok {
				pr.Acks = 1
			}
			rep := f.handle(req, v)
			resp := resolve(t, rep)
			if resp == nil {
				t.Errorf("%s v%d: no response", kmsg.NameForKey(key), v)
				continue
			}
			if resp.GetVersion() != v {
				t.Errorf("%s v%d: response version %d", kmsg.NameForKey(key), v, resp.GetVersion())
			}
			raw := resp.AppendTo(nil)
			back := req.ResponseKind()
			back.SetVersion(v)
			if err := back.ReadFrom(raw); err != nil {
				t.Errorf("%s v%d: response does not decode: %v", kmsg.NameForKey(key), v, err)
			}
		}
	}
}

// ------------------------------------------------------------------- Metadata

func metadataReq(topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func topicNames(resp *kmsg.MetadataResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		if t.Topic != nil {
			out = append(out, *t.Topic)
		}
	}
	sort.Strings(out)
	return out
}

func TestMetadataAllTopics(t *testing.T) {
	f := newFixture(t)
	f.createTopic("a", 2, nil)
	f.createTopic("b", 1, nil)
	tests := []struct {
		name string
		v    int16
		req  *kmsg.MetadataRequest
		want []string
	}{
		{"v0 empty list means all", 0, metadataReq(), []string{"a", "b"}},
		{"v1 null means all", 1, func() *kmsg.MetadataRequest { r := metadataReq(); r.Topics = nil; return r }(), []string{"a", "b"}},
		{"v1 empty list means none", 1, metadataReq(), nil},
		{"v12 null means all", 12, func() *kmsg.MetadataRequest { r := metadataReq(); r.Topics = nil; return r }(), []string{"a", "b"}},
		{"v9 one topic", 9, metadataReq("b"), []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(tt.req, tt.v).(*kmsg.MetadataResponse)
			if got := topicNames(resp); !slices.Equal(got, tt.want) {
				t.Errorf("topics = %v, want %v", got, tt.want)
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" || resp.Brokers[0].Port != 9092 || resp.Brokers[0].NodeID != 1 {
				t.Errorf("brokers = %+v", resp.Brokers)
			}
			for _, mt := range resp.Topics {
				for _, p := range mt.Partitions {
					if p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) {
						t.Errorf("%s-%d: leader %d replicas %v isr %v", *mt.Topic, p.Partition, p.Leader, p.Replicas, p.ISR)
					}
				}
			}
		})
	}
	resp := f.do(metadataReq("a"), 12).(*kmsg.MetadataResponse)
	if resp.ClusterID == nil || *resp.ClusterID != f.meta.Image().ClusterID || resp.ControllerID != 1 {
		t.Errorf("cluster id %v controller %d", resp.ClusterID, resp.ControllerID)
	}
	if mt := resp.Topics[0]; len(mt.Partitions) != 2 || mt.TopicID != f.meta.Image().Topics["a"].ID {
		t.Errorf("topic a: %d partitions, id %v", len(mt.Partitions), mt.TopicID)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	tests := []struct {
		name       string
		brokerAuto bool
		v          int16
		allow      bool
		created    bool
		code       *kerr.Error
	}{
		{"v3 always asks, broker allows", true, 3, false, true, nil},
		{"v3, broker forbids", false, 3, false, false, kerr.UnknownTopicOrPartition},
		{"v12 allow=false", true, 12, false, false, kerr.UnknownTopicOrPartition},
		{"v12 allow=true", true, 12, true, true, nil},
		{"v12 allow=true, broker forbids", false, 12, true, false, kerr.UnknownTopicOrPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openFixture(t, t.TempDir(), func(o *Options) { o.AutoCreateTopics = tt.brokerAuto; o.DefaultPartitions = 2 })
			req := metadataReq("auto")
			req.AllowAutoTopicCreation = tt.allow
			resp := f.do(req, tt.v).(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 {
				t.Fatalf("topics %v", resp.Topics)
			}
			wantCode(t, "auto", resp.Topics[0].ErrorCode, tt.code)
			_, exists := f.meta.Image().Topics["auto"]
			if exists != tt.created {
				t.Fatalf("topic exists = %v, want %v", exists, tt.created)
			}
			if tt.created {
				if n := len(resp.Topics[0].Partitions); n != 2 {
					t.Errorf("auto-created with %d partitions, want num.partitions 2", n)
				}
				if p := f.b.partition("auto", 1); p == nil {
					t.Error("auto-created partition not open")
				}
			}
		})
	}
	f := newFixture(t)
	resp := f.do(metadataReq("bad name!"), 12).(*kmsg.MetadataResponse)
	wantCode(t, "illegal name", resp.Topics[0].ErrorCode, kerr.InvalidTopicException)
	if len(f.meta.Image().Topics) != 0 {
		t.Error("illegal name was created")
	}
	// Unknown topic id at v12.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = [16]byte{1, 2, 3}
	req.Topics = append(req.Topics, rt)
	resp = f.do(req, 12).(*kmsg.MetadataResponse)
	wantCode(t, "unknown id", resp.Topics[0].ErrorCode, kerr.UnknownTopicID)
}

// --------------------------------------------------------------- CreateTopics

func TestCreateTopics(t *testing.T) {
	f := newFixture(t)
	f.createTopic("existing", 1, nil)
	topic := func(name string, parts int32, rf int16, cfg ...string) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for i := 0; i+1 < len(cfg); i += 2 {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = cfg[i], kmsg.StringPtr(cfg[i+1])
			rt.Configs = append(rt.Configs, c)
		}
		return rt
	}
	tests := []struct {
		name         string
		topics       []kmsg.CreateTopicsRequestTopic
		validateOnly bool
		want         map[string]*kerr.Error
		created      []string
	}{
		{"ok default partitions", []kmsg.CreateTopicsRequestTopic{topic("t1", -1, -1)}, false, map[string]*kerr.Error{"t1": nil}, []string{"t1"}},
		{"validate only", []kmsg.CreateTopicsRequestTopic{topic("v1", 4, 1, "retention.ms", "1000")}, true, map[string]*kerr.Error{"v1": nil}, nil},
		{"validate only catches bad config", []kmsg.CreateTopicsRequestTopic{topic("v2", 1, 1, "retention.ms", "x")}, true, map[string]*kerr.Error{"v2": kerr.InvalidConfig}, nil},
		{"validate only catches existing", []kmsg.CreateTopicsRequestTopic{topic("existing", 1, 1)}, true, map[string]*kerr.Error{"existing": kerr.TopicAlreadyExists}, nil},
		{"validate only catches 0 partitions", []kmsg.CreateTopicsRequestTopic{topic("v3", 0, 1)}, true, map[string]*kerr.Error{"v3": kerr.InvalidPartitions}, nil},
		{"duplicate in one request", []kmsg.CreateTopicsRequestTopic{topic("dup", 1, 1), topic("dup", 2, 1), topic("solo", 1, 1)}, false,
			map[string]*kerr.Error{"dup": kerr.InvalidRequest, "solo": nil}, []string{"solo"}},
		{"existing", []kmsg.CreateTopicsRequestTopic{topic("existing", 1, 1)}, false, map[string]*kerr.Error{"existing": kerr.TopicAlreadyExists}, nil},
		{"name with space", []kmsg.CreateTopicsRequestTopic{topic("a b", 1, 1)}, false, map[string]*kerr.Error{"a b": kerr.InvalidTopicException}, nil},
		{"name dot", []kmsg.CreateTopicsRequestTopic{topic(".", 1, 1)}, false, map[string]*kerr.Error{".": kerr.InvalidTopicException}, nil},
		{"name dotdot", []kmsg.CreateTopicsRequestTopic{topic("..", 1, 1)}, false, map[string]*kerr.Error{"..": kerr.InvalidTopicException}, nil},
		{"name empty", []kmsg.CreateTopicsRequestTopic{topic("", 1, 1)}, false, map[string]*kerr.Error{"": kerr.InvalidTopicException}, nil},
		{"name too long", []kmsg.CreateTopicsRequestTopic{topic(strings.Repeat("x", 250), 1, 1)}, false, map[string]*kerr.Error{strings.Repeat("x", 250): kerr.InvalidTopicException}, nil},
		{"name slash", []kmsg.CreateTopicsRequestTopic{topic("../etc", 1, 1)}, false, map[string]*kerr.Error{"../etc": kerr.InvalidTopicException}, nil},
		{"partitions 0", []kmsg.CreateTopicsRequestTopic{topic("p0", 0, 1)}, false, map[string]*kerr.Error{"p0": kerr.InvalidPartitions}, nil},
		{"partitions -2", []kmsg.CreateTopicsRequestTopic{topic("pm2", -2, 1)}, false, map[string]*kerr.Error{"pm2": kerr.InvalidPartitions}, nil},
		{"replication 3", []kmsg.CreateTopicsRequestTopic{topic("rf3", 1, 3)}, false, map[string]*kerr.Error{"rf3": kerr.InvalidReplicationFactor}, nil},
		{"unknown config", []kmsg.CreateTopicsRequestTopic{topic("uc", 1, 1, "retention.mss", "1")}, false, map[string]*kerr.Error{"uc": kerr.InvalidConfig}, nil},
		{"with config", []kmsg.CreateTopicsRequestTopic{topic("wc", 2, 1, "cleanup.policy", "compact")}, false, map[string]*kerr.Error{"wc": nil}, []string{"wc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.meta.Image().Topics)
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Topics, req.ValidateOnly = tt.topics, tt.validateOnly
			resp := f.do(req, 7).(*kmsg.CreateTopicsResponse)
			if len(resp.Topics) != len(tt.topics) {
				t.Fatalf("%d answers for %d topics", len(resp.Topics), len(tt.topics))
			}
			for _, st := range resp.Topics {
				want, ok := tt.want[st.Topic]
				if !ok {
					t.Fatalf("answer for unexpected topic %q", st.Topic)
				}
				wantCode(t, st.Topic, st.ErrorCode, want)
				if want != nil && (st.ErrorMessage == nil || *st.ErrorMessage == "") {
					t.Errorf("%s: no error message", st.Topic)
				}
				if want == nil && !tt.validateOnly && (st.TopicID == [16]byte{} || st.NumPartitions < 1 || st.ReplicationFactor != 1 || len(st.Configs) == 0) {
					t.Errorf("%s: success answer lacks id/partitions/configs: %+v", st.Topic, st)
				}
			}
			if got := len(f.meta.Image().Topics) - before; got != len(tt.created) {
				t.Errorf("%d topics created, want %d", got, len(tt.created))
			}
			for _, name := range tt.created {
				mt := f.meta.Image().Topics[name]
				if mt == nil || f.b.partition(name, mt.Partitions-1) == nil {
					t.Errorf("%s not created with open partitions", name)
				}
			}
		})
	}
	if n := f.meta.Image().Topics["t1"].Partitions; n != 3 {
		t.Errorf("NumPartitions -1 gave %d partitions, want num.partitions 3", n)
	}
	if v := f.meta.Image().Topics["wc"].Configs["cleanup.policy"]; v != "compact" {
		t.Errorf("wc cleanup.policy = %q", v)
	}
}

// -------------------------------------------------------------------- Produce

func TestProduceAcks0(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	rep := f.handle(produceReq("t", 0, 0, makeRecordBatch(t, plainBatch(3))), 9)
	if rep.Resp != nil || rep.Later != nil {
		t.Fatalf("acks=0 reply = %+v, want no response at all", rep)
	}
	// The committer makes it durable without anyone waiting; then it is readable.
	deadline := time.Now().Add(10 * time.Second)
	for {
		sp := f.fetch("t", 0, 0, 1<<20)
		if sp.ErrorCode == 0 && sp.HighWatermark == 3 {
			if got := batchOffsets(t, sp.RecordBatches); len(got) != 1 || got[0] != [2]int64{0, 3} {
				t.Fatalf("fetched batches %v, want one batch at 0 of 3 records", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks=0 data never became readable: hwm %d err %v", sp.HighWatermark, kerr.ErrorForCode(sp.ErrorCode))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProduceAcks1WaitsForRound: the deferred reply returns only after the
// committer's round covering the append, and then the data is durable.
func TestProduceAcks1WaitsForRound(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	// Stop the running committer so we control rounds; run them with Flush.
	f.stopCommitter()
	for _, acks := range []int16{1, -1} {
		p := f.b.partition("t", 0)
		before := p.Log().LogEndOffset()
		rep := f.handle(produceReq("t", 0, acks, makeRecordBatch(t, plainBatch(2))), 9)
		if rep.Later == nil {
			t.Fatalf("acks=%d: reply not deferred", acks)
		}
		ch := make(chan kmsg.Response, 1)
		go func() { ch <- rep.Later() }()
		select {
		case <-ch:
			t.Fatalf("acks=%d: reply returned before the commit round", acks)
		case <-time.After(50 * time.Millisecond):
		}
		if p.HighWatermark() != before {
			t.Fatalf("HWM moved before the round")
		}
		f.com.Flush()
		var resp kmsg.Response
		select {
		case resp = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("acks=%d: no reply after the round", acks)
		}
		sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || sp.BaseOffset != before {
			t.Errorf("acks=%d: error %v base %d, want base %d", acks, kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, before)
		}
		if hwm := p.HighWatermark(); hwm != before+2 {
			t.Errorf("acks=%d: HWM %d after reply, want %d", acks, hwm, before+2)
		}
	}
}

func TestProduceErrors(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.createTopic("small", 1, map[string]string{"max.message.bytes": "200"})
	good := makeRecordBatch(t, plainBatch(1))
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff
	magic1 := slices.Clone(good)
	magic1[16] = 1
	txn := makeRecordBatch(t, batchSpec{n: 1, pid: 5, epoch: 0, seq: 0, attrs: 0x10, valueSize: 1})
	future := makeRecordBatch(t, batchSpec{n: 1, pid: -1, epoch: -1, seq: -1, ts: time.Now().Add(2 * time.Hour).UnixMilli()})
	tests := []struct {
		name    string
		topic   string
		part    int32
		records []byte
		want    *kerr.Error
	}{
		{"unknown topic", "nope", 0, good, kerr.UnknownTopicOrPartition},
		{"unknown partition", "t", 5, good, kerr.UnknownTopicOrPartition},
		{"corrupt crc", "t", 0, corrupt, kerr.CorruptMessage},
		{"magic 1", "t", 0, magic1, kerr.UnsupportedForMessageFormat},
		{"truncated", "t", 0, good[:len(good)-3], kerr.InvalidRecord},
		{"empty", "t", 0, []byte{}, kerr.InvalidRecord},
		{"too large", "small", 0, makeRecordBatch(t, batchSpec{n: 1, pid: -1, epoch: -1, seq: -1, valueSize: 300}), kerr.MessageTooLarge},
		{"transactional", "t", 0, txn, kerr.InvalidTxnState},
		{"timestamp too far ahead", "t", 0, future, kerr.InvalidTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := f.produce(tt.topic, tt.part, tt.records)
			wantCode(t, tt.name, sp.ErrorCode, tt.want)
			if sp.BaseOffset != -1 {
				t.Errorf("base offset %d on error", sp.BaseOffset)
			}
		})
	}
	if end := f.b.partition("t", 0).Log().LogEndOffset(); end != 0 {
		t.Errorf("rejected batches were appended: log end %d", end)
	}
	// Bad acks and a transactional id reject every partition.
	req := produceReq("t", 0, 2, good)
	resp := f.do(req, 9).(*kmsg.ProduceResponse)
	wantCode(t, "acks=2", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequiredAcks)
	req = produceReq("t", 0, -1, good)
	req.TransactionID = kmsg.StringPtr("tx")
	resp = f.do(req, 9).(*kmsg.ProduceResponse)
	if resp.Topics[0].Partitions[0].ErrorCode == 0 {
		t.Error("transactional produce accepted")
	}
}

// ---------------------------------------------------------------------- Fetch

func TestFetchLongPoll(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.mustProduce("t", 0, makeRecordBatch(t, plainBatch(2)))

	longPoll := func() (wire.Reply, *kmsg.FetchRequest) {
		req := fetchReq("t", [16]byte{}, 0, 2, 1<<20)
		req.MaxWaitMillis, req.MinBytes = 200, 1
		return f.handle(req, 12), req
	}

	t.Run("data arrives before the deadline", func(t *testing.T) {
		rep, _ := longPoll()
		if rep.Later == nil {
			t.Fatal("fetch at HWM with MinBytes 1 did not defer")
		}
		start := time.Now()
		ch := make(chan kmsg.Response, 1)
		go func() { ch <- rep.Later() }()
		time.Sleep(20 * time.Millisecond)
		f.mustProduce("t", 0, makeRecordBatch(t, plainBatch(3)))
		resp := (<-ch).(*kmsg.FetchResponse)
		took := time.Since(start)
		sp := resp.Topics[0].Partitions[0]
		if got := batchOffsets(t, sp.RecordBatches); len(got) != 1 || got[0] != [2]int64{2, 3} {
			t.Errorf("long poll returned batches %v, want the new batch at 2", got)
		}
		if took >= 190*time.Millisecond {
			t.Errorf("long poll took %v: it waited for the deadline instead of the data", took)
		}
		if sp.HighWatermark != 5 {
			t.Errorf("HWM %d, want 5", sp.HighWatermark)
		}
	})
	t.Run("nothing arrives", func(t *testing.T) {
		req := fetchReq("t", [16]byte{}, 0, 5, 1<<20)
		req.MaxWaitMillis, req.MinBytes = 200, 1
		rep := f.handle(req, 12)
		if rep.Later == nil {
			t.Fatal("fetch at HWM did not defer")
		}
		start := time.Now()
		resp := resolve(t, rep).(*kmsg.FetchResponse)
		took := time.Since(start)
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || len(sp.RecordBatches) != 0 || sp.RecordBatches == nil {
			t.Errorf("empty long poll: error %v, %d bytes (nil %v)", kerr.ErrorForCode(sp.ErrorCode), len(sp.RecordBatches), sp.RecordBatches == nil)
		}
		if took < 150*time.Millisecond || took > 5*time.Second {
			t.Errorf("empty long poll returned after %v, want about 200ms", took)
		}
	})
	t.Run("data already there answers at once", func(t *testing.T) {
		req := fetchReq("t", [16]byte{}, 0, 0, 1<<20)
		req.MaxWaitMillis, req.MinBytes = 5000, 1
		rep := f.handle(req, 12)
		if rep.Later != nil || rep.Resp == nil {
			t.Fatal("fetch with data available was deferred")
		}
	})
}

func TestFetchOffsets(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.mustProduce("t", 0, makeRecordBatch(t, plainBatch(2)))
	tests := []struct {
		offset int64
		want   *kerr.Error
		bytes  bool
	}{
		{0, nil, true},
		{1, nil, true}, // inside the first batch: the whole batch comes back
		{2, nil, false},
		{3, kerr.OffsetOutOfRange, false},
		{100, kerr.OffsetOutOfRange, false},
		{-1, kerr.OffsetOutOfRange, false},
	}
	for _, tt := range tests {
		sp := f.fetch("t", 0, tt.offset, 1<<20)
		wantCode(t, "offset "+strconv.FormatInt(tt.offset, 10), sp.ErrorCode, tt.want)
		if (len(sp.RecordBatches) > 0) != tt.bytes {
			t.Errorf("offset %d: %d bytes", tt.offset, len(sp.RecordBatches))
		}
		if sp.HighWatermark != 2 || sp.LastStableOffset != 2 || sp.LogStartOffset != 0 {
			t.Errorf("offset %d: hwm %d lso %d start %d", tt.offset, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset)
		}
	}
	sp := f.fetch("nope", 0, 0, 1<<20)
	wantCode(t, "unknown topic", sp.ErrorCode, kerr.UnknownTopicOrPartition)
	// Fenced / unknown leader epoch.
	req := fetchReq("t", [16]byte{}, 0, 0, 1<<20)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	resp := f.do(req, 12).(*kmsg.FetchResponse)
	wantCode(t, "future leader epoch", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownLeaderEpoch)
	// A fetch session id we never issued.
	req = fetchReq("t", [16]byte{}, 0, 0, 1<<20)
	req.SessionID, req.SessionEpoch = 42, 1
	resp = f.do(req, 12).(*kmsg.FetchResponse)
	wantCode(t, "session", resp.ErrorCode, kerr.FetchSessionIDNotFound)
}

// TestFetchMaxBytes: PartitionMaxBytes bounds the answer in whole batches,
// but the first batch comes back even when it alone is larger (KIP-74).
func TestFetchMaxBytes(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	var sizes []int
	for range 4 {
		b := makeRecordBatch(t, batchSpec{n: 2, pid: -1, epoch: -1, seq: -1, valueSize: 100})
		sizes = append(sizes, len(b))
		f.mustProduce("t", 0, b)
	}
	big := makeRecordBatch(t, batchSpec{n: 1, pid: -1, epoch: -1, seq: -1, valueSize: 5000})
	f.mustProduce("t", 1, big)
	tests := []struct {
		name    string
		offset  int64
		partMax int32
		bases   []int64
	}{
		{"one byte still gets the first batch", 0, 1, []int64{0}},
		{"exactly one batch", 0, int32(sizes[0]), []int64{0}},
		{"one and a half", 0, int32(sizes[0] + sizes[1]/2), []int64{0}},
		{"two batches", 0, int32(sizes[0] + sizes[1]), []int64{0, 2}},
		{"all", 0, 1 << 20, []int64{0, 2, 4, 6}},
		{"from the middle", 4, int32(sizes[2] + sizes[3]), []int64{4, 6}},
	}
	for _, tt := range tests {
		sp := f.fetch("t", 0, tt.offset, tt.partMax)
		var bases []int64
		for _, b := range batchOffsets(t, sp.RecordBatches) {
			bases = append(bases, b[0])
		}
		if !slices.Equal(bases, tt.bases) {
			t.Errorf("%s: batches at %v, want %v", tt.name, bases, tt.bases)
		}
		if tt.partMax > 1 && len(sp.RecordBatches) > int(tt.partMax) && len(tt.bases) > 1 {
			t.Errorf("%s: %d bytes over the %d limit", tt.name, len(sp.RecordBatches), tt.partMax)
		}
	}
	// Two partitions: the big batch of p1 is returned when it comes first,
	// not after p0 already filled the response.
	req := kmsg.NewPtrFetchRequest()
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for _, p := range []int32{1, 0} {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1000
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := f.do(req, 12).(*kmsg.FetchResponse)
	if p1 := resp.Topics[0].Partitions[0]; len(p1.RecordBatches) != len(big) {
		t.Errorf("first partition's oversized batch: %d bytes, want %d", len(p1.RecordBatches), len(big))
	}
	if p0 := resp.Topics[0].Partitions[1]; len(p0.RecordBatches) == 0 || len(p0.RecordBatches) > 1000 {
		t.Errorf("second partition: %d bytes, want 1..1000", len(p0.RecordBatches))
	}
	// Response MaxBytes caps the total across partitions (after the first batch).
	req.MaxBytes = int32(len(big))
	resp = f.do(req, 12).(*kmsg.FetchResponse)
	if n := len(resp.Topics[0].Partitions[1].RecordBatches); n != 0 {
		t.Errorf("MaxBytes exhausted by the first partition, second still got %d bytes", n)
	}
}

func TestFetchByTopicID(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.mustProduce("t", 0, makeRecordBatch(t, plainBatch(4)))
	id := f.meta.Image().Topics["t"].ID
	for _, v := range []int16{13, 16, 18} {
		resp := f.do(fetchReq("", id, 0, 0, 1<<20), v).(*kmsg.FetchResponse)
		st := resp.Topics[0]
		if st.TopicID != id {
			t.Errorf("v%d: topic id %v, want %v", v, st.TopicID, id)
		}
		sp := st.Partitions[0]
		if sp.ErrorCode != 0 || sp.HighWatermark != 4 {
			t.Errorf("v%d: error %v hwm %d", v, kerr.ErrorForCode(sp.ErrorCode), sp.HighWatermark)
		}
		if got := batchOffsets(t, sp.RecordBatches); len(got) != 1 || got[0] != [2]int64{0, 4} {
			t.Errorf("v%d: batches %v", v, got)
		}
		resp = f.do(fetchReq("", [16]byte{9}, 0, 0, 1<<20), v).(*kmsg.FetchResponse)
		wantCode(t, "unknown id", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	}
	// v12 ignores the id and uses the name.
	resp := f.do(fetchReq("t", [16]byte{9}, 0, 0, 1<<20), 12).(*kmsg.FetchResponse)
	wantCode(t, "v12 by name", resp.Topics[0].Partitions[0].ErrorCode, nil)

	// Produce v13 by id, too.
	req := produceReq("", 0, -1, makeRecordBatch(t, plainBatch(1)))
	req.Topics[0].TopicID = id
	presp := f.do(req, 13).(*kmsg.ProduceResponse)
	if sp := presp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.BaseOffset != 4 {
		t.Errorf("produce v13 by id: %v base %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
}

// ---------------------------------------------------------------- ListOffsets

func TestListOffsets(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	base := time.Now().Add(-time.Minute).UnixMilli()
	// Batches with timestamps base+0..1, base+10..12, base+5 (max is in the second batch).
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 2, pid: -1, epoch: -1, seq: -1, ts: base}))
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 3, pid: -1, epoch: -1, seq: -1, ts: base + 10}))
	f.mustProduce("t", 0, makeRecordBatch(t, batchSpec{n: 1, pid: -1, epoch: -1, seq: -1, ts: base + 5}))
	tests := []struct {
		name       string
		part       int32
		ts         int64
		wantOffset int64
		wantTS     int64
	}{
		{"latest", 0, -1, 6, -1},
		{"earliest", 0, -2, 0, -1},
		{"earliest local", 0, -4, 0, -1},
		{"max timestamp", 0, -3, 4, base + 12},
		{"timestamp before all", 0, base - 100, 0, base},
		{"timestamp exact first", 0, base, 0, base},
		{"timestamp inside batch", 0, base + 1, 1, base + 1},
		{"timestamp between", 0, base + 2, 2, base + 10},
		{"timestamp mid second batch", 0, base + 11, 3, base + 11},
		{"timestamp after all", 0, base + 13, -1, -1},
		{"empty partition latest", 1, -1, 0, -1},
		{"empty partition earliest", 1, -2, 0, -1},
		{"empty partition max", 1, -3, -1, -1},
		{"empty partition timestamp", 1, base, -1, -1},
	}
	for _, tt := range tests {
		sp := f.listOffset("t", tt.part, tt.ts)
		if sp.ErrorCode != 0 || sp.Offset != tt.wantOffset || sp.Timestamp != tt.wantTS {
			t.Errorf("%s: offset %d ts %d err %v, want offset %d ts %d", tt.name, sp.Offset, sp.Timestamp,
				kerr.ErrorForCode(sp.ErrorCode), tt.wantOffset, tt.wantTS)
		}
	}
	wantCode(t, "unknown topic", f.listOffset("nope", 0, -1).ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown partition", f.listOffset("t", 9, -1).ErrorCode, kerr.UnknownTopicOrPartition)
}

// ----------------------------------------------------------- CreatePartitions

func TestCreatePartitions(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2, nil)
	f.createTopic("u", 1, nil)
	req := func(validate bool, tc ...any) *kmsg.CreatePartitionsRequest {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.ValidateOnly = validate
		for i := 0; i < len(tc); i += 2 {
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = tc[i].(string), int32(tc[i+1].(int))
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	tests := []struct {
		name  string
		req   *kmsg.CreatePartitionsRequest
		want  []*kerr.Error
		parts map[string]int32
	}{
		{"grow", req(false, "t", 4), []*kerr.Error{nil}, map[string]int32{"t": 4}},
		{"validate only", req(true, "t", 6), []*kerr.Error{nil}, map[string]int32{"t": 4}},
		{"same count", req(false, "t", 4), []*kerr.Error{kerr.InvalidPartitions}, map[string]int32{"t": 4}},
		{"shrink", req(false, "t", 1), []*kerr.Error{kerr.InvalidPartitions}, map[string]int32{"t": 4}},
		{"validate only shrink", req(true, "t", 1), []*kerr.Error{kerr.InvalidPartitions}, map[string]int32{"t": 4}},
		{"unknown topic", req(false, "nope", 3), []*kerr.Error{kerr.UnknownTopicOrPartition}, nil},
		{"named twice", req(false, "u", 2, "u", 3), []*kerr.Error{kerr.InvalidRequest, kerr.InvalidRequest}, map[string]int32{"u": 1}},
		{"too many", req(false, "u", 100000), []*kerr.Error{kerr.InvalidPartitions}, map[string]int32{"u": 1}},
	}
	for _, tt := range tests {
		resp := f.do(tt.req, 3).(*kmsg.CreatePartitionsResponse)
		for i, st := range resp.Topics {
			wantCode(t, tt.name, st.ErrorCode, tt.want[i])
		}
		for name, n := range tt.parts {
			if got := f.meta.Image().Topics[name].Partitions; got != n {
				t.Errorf("%s: %s has %d partitions, want %d", tt.name, name, got, n)
			}
			if f.b.partition(name, n-1) == nil || f.b.partition(name, n) != nil {
				t.Errorf("%s: open partitions of %s do not match %d", tt.name, name, n)
			}
		}
	}
	// New partitions take writes, and survive a restart.
	f.mustProduce("t", 3, makeRecordBatch(t, plainBatch(1)))
	f = f.reopen(false)
	if sp := f.fetch("t", 3, 0, 1<<20); sp.ErrorCode != 0 || sp.HighWatermark != 1 {
		t.Errorf("after reopen t-3: %v hwm %d", kerr.ErrorForCode(sp.ErrorCode), sp.HighWatermark)
	}
}

// --------------------------------------------------------------- DeleteTopics

func TestDeleteTopics(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"a", "b", "c"} {
		f.createTopic(n, 2, nil)
		f.mustProduce(n, 0, makeRecordBatch(t, plainBatch(1)))
	}
	idB := f.meta.Image().Topics["b"].ID

	// v5: by name.
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"a", "nope"}
	resp := f.do(req, 5).(*kmsg.DeleteTopicsResponse)
	codes := map[string]int16{}
	for _, st := range resp.Topics {
		codes[*st.Topic] = st.ErrorCode
	}
	wantCode(t, "delete a", codes["a"], nil)
	wantCode(t, "delete nope", codes["nope"], kerr.UnknownTopicOrPartition)

	// v6: by id and by name in one request, plus an unknown id.
	req = kmsg.NewPtrDeleteTopicsRequest()
	for _, tt := range []struct {
		name *string
		id   [16]byte
	}{{nil, idB}, {kmsg.StringPtr("c"), [16]byte{}}, {nil, [16]byte{7}}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic, rt.TopicID = tt.name, tt.id
		req.Topics = append(req.Topics, rt)
	}
	resp = f.do(req, 6).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 3 {
		t.Fatalf("%d answers, want 3", len(resp.Topics))
	}
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.Topic == nil || *st.Topic != "b" || st.TopicID != idB {
		t.Errorf("delete by id: %+v", st)
	}
	wantCode(t, "delete c by name", resp.Topics[1].ErrorCode, nil)
	wantCode(t, "unknown id", resp.Topics[2].ErrorCode, kerr.UnknownTopicID)

	if n := len(f.meta.Image().Topics); n != 0 {
		t.Errorf("%d topics left", n)
	}
	for _, n := range []string{"a", "b", "c"} {
		if f.b.partition(n, 0) != nil {
			t.Errorf("%s still open", n)
		}
		sp := f.produce(n, 0, makeRecordBatch(t, plainBatch(1)))
		wantCode(t, "produce to deleted "+n, sp.ErrorCode, kerr.UnknownTopicOrPartition)
	}
	// A recreated topic starts empty and stays so across a restart.
	f.createTopic("a", 1, nil)
	if sp := f.fetch("a", 0, 0, 1<<20); sp.HighWatermark != 0 {
		t.Errorf("recreated topic has hwm %d", sp.HighWatermark)
	}
	f = f.reopen(false)
	if _, ok := f.meta.Image().Topics["b"]; ok {
		t.Error("deleted topic b back after restart")
	}
	if sp := f.fetch("a", 0, 0, 1<<20); sp.ErrorCode != 0 || sp.HighWatermark != 0 {
		t.Errorf("recreated a after restart: %v hwm %d", kerr.ErrorForCode(sp.ErrorCode), sp.HighWatermark)
	}
}

// ------------------------------------------------------------ DescribeConfigs

func TestDescribeConfigs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{"retention.ms": "1234"})
	res := func(typ kmsg.ConfigResourceType, name string, names ...string) kmsg.DescribeConfigsRequestResource {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, name
		if names != nil {
			r.ConfigNames = names
		}
		return r
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		res(kmsg.ConfigResourceTypeTopic, "t"),
		res(kmsg.ConfigResourceTypeTopic, "t", "retention.ms", "segment.bytes"),
		res(kmsg.ConfigResourceTypeTopic, "nope"),
		res(kmsg.ConfigResourceTypeBroker, "1"),
		res(kmsg.ConfigResourceTypeBroker, ""),
		res(kmsg.ConfigResourceTypeBroker, "2"),
		res(kmsg.ConfigResourceTypeBrokerLogger, "1"),
	}
	resp := f.do(req, 4).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != len(req.Resources) {
		t.Fatalf("%d resources answered", len(resp.Resources))
	}
	byName := func(cs []kmsg.DescribeConfigsResponseResourceConfig) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range cs {
			m[c.Name] = c
		}
		return m
	}

	all := byName(resp.Resources[0].Configs)
	if len(all) != len(metadata.TopicConfigDefs) {
		t.Errorf("topic lists %d configs, want %d", len(all), len(metadata.TopicConfigDefs))
	}
	if c := all["retention.ms"]; c.Value == nil || *c.Value != "1234" || c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.IsDefault || len(c.ConfigSynonyms) != 2 {
		t.Errorf("retention.ms = %+v", c)
	}
	if c := all["segment.bytes"]; c.Value == nil || *c.Value != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig || !c.IsDefault {
		t.Errorf("segment.bytes = %+v", c)
	}
	if c := all["cleanup.policy"]; c.Documentation == nil || *c.Documentation == "" || c.ConfigType != kmsg.ConfigTypeList {
		t.Errorf("cleanup.policy lacks docs or type: %+v", c)
	}
	if some := byName(resp.Resources[1].Configs); len(some) != 2 {
		t.Errorf("named configs: %d returned, want 2", len(some))
	}
	wantCode(t, "unknown topic", resp.Resources[2].ErrorCode, kerr.UnknownTopicOrPartition)
	for i, name := range []string{"broker 1", "broker \"\""} {
		r := resp.Resources[3+i]
		wantCode(t, name, r.ErrorCode, nil)
		bc := byName(r.Configs)
		if c := bc["num.partitions"]; c.Value == nil || *c.Value != "3" || !c.IsDefault || c.Source != kmsg.ConfigSourceDefaultConfig || c.ReadOnly {
			t.Errorf("%s num.partitions = %+v", name, c)
		}
		if c := bc["log.dirs"]; c.Source != kmsg.ConfigSourceStaticBrokerConfig || c.IsDefault || !c.ReadOnly {
			t.Errorf("%s log.dirs = %+v", name, c)
		}
		if c := bc["ssl.key.password"]; !c.IsSensitive || c.Value != nil {
			t.Errorf("%s sensitive config shown: %+v", name, c)
		}
	}
	wantCode(t, "broker 2", resp.Resources[5].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "broker logger", resp.Resources[6].ErrorCode, kerr.InvalidRequest)
}

// ------------------------------------------------------------- InitProducerID

func initPID(f *brokerFixture, pid int64, epoch int16, txn *string) *kmsg.InitProducerIDResponse {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.ProducerID, req.ProducerEpoch, req.TransactionalID = pid, epoch, txn
	return f.do(req, 4).(*kmsg.InitProducerIDResponse)
}

func TestInitProducerID(t *testing.T) {
	f := newFixture(t)
	var ids []int64
	for range 3 {
		r := initPID(f, -1, -1, nil)
		if r.ErrorCode != 0 || r.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
		}
		ids = append(ids, r.ProducerID)
	}
	if ids[0] < 0 || ids[1] <= ids[0] || ids[2] <= ids[1] {
		t.Fatalf("ids not increasing: %v", ids)
	}
	// KIP-360: an issued id with its epoch gets the epoch bumped.
	r := initPID(f, ids[1], 0, nil)
	if r.ErrorCode != 0 || r.ProducerID != ids[1] || r.ProducerEpoch != 1 {
		t.Errorf("epoch bump: %v id %d epoch %d, want id %d epoch 1", kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch, ids[1])
	}
	// At the epoch limit a new id is issued.
	r = initPID(f, ids[1], 32766, nil)
	if r.ErrorCode != 0 || r.ProducerID == ids[1] || r.ProducerEpoch != 0 {
		t.Errorf("epoch exhausted: %v id %d epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch)
	}
	last := r.ProducerID
	// A never-issued id.
	r = initPID(f, 1_000_000, 0, nil)
	wantCode(t, "never issued", r.ErrorCode, kerr.InvalidProducerIDMapping)
	// Transactional ids are refused.
	r = initPID(f, -1, -1, kmsg.StringPtr("tx-1"))
	wantCode(t, "transactional", r.ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	if r.ProducerID != -1 {
		t.Errorf("transactional got id %d", r.ProducerID)
	}

	for _, crash := range []bool{false, true} {
		f = f.reopen(crash)
		r = initPID(f, -1, -1, nil)
		if r.ErrorCode != 0 || r.ProducerID <= last {
			t.Fatalf("after reopen (crash %v): id %d, last before %d: ids reused", crash, r.ProducerID, last)
		}
		last = r.ProducerID
		// Ids issued before the restart are still known.
		if r := initPID(f, ids[0], 0, nil); r.ErrorCode != 0 || r.ProducerID != ids[0] {
			t.Errorf("after reopen: epoch bump of old id: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// TestProduceTimeout: with no commit round, an acks=-1 produce answers
// REQUEST_TIMED_OUT after its timeout instead of hanging or claiming success.
func TestProduceTimeout(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil)
	f.stopCommitter()
	req := produceReq("t", 0, -1, makeRecordBatch(t, plainBatch(1)))
	req.TimeoutMillis = 100
	start := time.Now()
	resp := f.do(req, 9).(*kmsg.ProduceResponse)
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("answered after %v, before the timeout", d)
	}
	sp := resp.Topics[0].Partitions[0]
	wantCode(t, "no fsync round", sp.ErrorCode, kerr.RequestTimedOut)
	if sp.BaseOffset != -1 {
		t.Errorf("base offset %d on timeout", sp.BaseOffset)
	}
}

// TestStartCleansPartitionDirs: directories of topics deleted (or deleted and
// recreated) while the broker was down, e.g. a crash between the metadata
// record and the file removal, are cleaned up at start; foreign directories
// are left alone.
func TestStartCleansPartitionDirs(t *testing.T) {
	dir := t.TempDir()
	f := openFixture(t, dir, nil)
	f.createTopic("gone", 2, nil)
	f.createTopic("again", 1, nil)
	f.mustProduce("gone", 0, makeRecordBatch(t, plainBatch(1)))
	f.mustProduce("again", 0, makeRecordBatch(t, plainBatch(3)))
	f.close()
	foreign := filepath.Join(dir, "notes-1")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}

	meta, err := metadata.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{meta.DeleteTopic("gone"), meta.DeleteTopic("again"), second(meta.CreateTopic("again", 1, nil))} {
		if step != nil {
			t.Fatal(step)
		}
	}
	meta.Close()

	f = openFixture(t, dir, nil)
	for _, d := range []string{"gone-0", "gone-1"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s still there after start (err %v)", d, err)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("foreign directory removed: %v", err)
	}
	if sp := f.fetch("again", 0, 0, 1<<20); sp.ErrorCode != 0 || sp.HighWatermark != 0 {
		t.Errorf("recreated topic shows old data: %v hwm %d", kerr.ErrorForCode(sp.ErrorCode), sp.HighWatermark)
	}
}

func second[T any](_ T, err error) error { return err }
