package cluster_test

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replication factor 3 over three broker processes: acks=all is answered
// once every in-sync replica has the records durable, so each broker's log
// holds the same batches at the same offsets; a follower killed with kill -9
// leaves the in-sync set after replica.lag.time.max.ms and producing goes
// on; with fewer replicas in sync than min.insync.replicas acks=all is
// refused (NOT_ENOUGH_REPLICAS) while acks=1 still works; a follower that
// comes back below its leader's log start (DeleteRecords meanwhile) takes up
// the log from there, catches up and rejoins, and every replica ends with
// the same log.
func TestClusterReplication(t *testing.T) {
	c := cluster.Start(t, 3, "--replica-lag-time-max-ms", "1500")
	seeds := c.Bootstrap()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	kadmc := kadm.NewClient(adm)
	ctx := cluster.Ctx(t, 150*time.Second)

	// Kafka's placement over three brokers, and an explicit one led by
	// broker 1 for the fault steps.
	created, err := kadmc.CreateTopic(ctx, 3, 3, nil, "spread")
	if err != nil || created.Err != nil {
		t.Fatalf("create spread: %v %v", err, created.Err)
	}
	mins := "2"
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "r", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2, 3}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "min.insync.replicas", &mins
	rt.Configs = append(rt.Configs, cfg)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	cresp, err := req.RequestWith(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(cresp.Topics[0].ErrorCode); e != nil || cresp.Topics[0].ReplicationFactor != 3 {
		t.Fatalf("create r: %v, replication factor %d", e, cresp.Topics[0].ReplicationFactor)
	}
	rid := cresp.Topics[0].TopicID
	// Asking for more replicas than brokers is refused.
	if r, err := kadmc.CreateTopic(ctx, 1, 4, nil, "toomany"); err == nil && r.Err == nil {
		t.Fatal("replication factor 4 on three brokers accepted")
	} else if r.Err != nil && !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4: %v, want INVALID_REPLICATION_FACTOR", r.Err)
	}
	cluster.WaitFor(t, 10*time.Second, func() error {
		for id := 1; id <= 3; id++ {
			md, err := metadataOf(ctx, c.Node(id).KafkaAddr(), "spread", "r")
			if err != nil {
				return err
			}
			leaders := map[int32]bool{}
			for _, mt := range md.Topics {
				for _, mp := range mt.Partitions {
					if len(mp.Replicas) != 3 || mp.Leader < 1 {
						return fmt.Errorf("broker %d: %s-%d replicas %v leader %d", id, *mt.Topic, mp.Partition, mp.Replicas, mp.Leader)
					}
					if *mt.Topic == "spread" {
						leaders[mp.Leader] = true
					}
				}
			}
			if len(leaders) != 3 {
				return fmt.Errorf("broker %d: spread's leaders %v, want all three brokers", id, leaders)
			}
		}
		return nil
	})

	p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := map[string][]string{} // topic-partition -> values in order
	produce := func(topic string, part int32, n int, tag string) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			v := fmt.Sprintf("%s-%d", tag, i)
			recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s to %s-%d: %v", tag, topic, part, err)
		}
		key := topic + "-" + strconv.Itoa(int(part))
		for _, r := range recs {
			sent[key] = append(sent[key], string(r.Value))
		}
	}
	for part := range int32(3) {
		produce("spread", part, 100, "a")
	}
	produce("r", 0, 100, "a")
	consumeAll(t, ctx, seeds, sent)

	// A follower dies: after replica.lag.time.max.ms it leaves the
	// in-sync set and acks=all goes on with two replicas.
	c.Node(3).Kill()
	start := time.Now()
	produce("r", 0, 50, "b")
	t.Logf("acks=all with a follower just killed answered after %v", time.Since(start).Round(time.Millisecond))

	// With min.insync.replicas=3 and two replicas in sync, acks=all is
	// refused without appending (NOT_ENOUGH_REPLICAS); acks=1 still
	// works. (Two of three brokers down would also stop the metadata
	// quorum.)
	cluster.WaitFor(t, 15*time.Second, func() error { // the quorum's leader may have been broker 3
		rs, err := kadmc.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kmsg.StringPtr("3")}}, "r")
		if err == nil {
			err = rs[0].Err
		}
		return err
	})
	leader := c.Node(1).KafkaAddr()
	cluster.WaitFor(t, 15*time.Second, func() error {
		code := rawProduce(ctx, t, leader, "r", rid, -1, "refused")
		if code == kerr.NotEnoughReplicas.Code {
			return nil
		}
		return fmt.Errorf("acks=all: %v", kerr.ErrorForCode(code))
	})
	if code := rawProduce(ctx, t, leader, "r", rid, 1, "acks1"); code != 0 {
		t.Fatalf("acks=1 with two replicas in sync: %v", kerr.ErrorForCode(code))
	}
	sent["r-0"] = append(sent["r-0"], "acks1")

	// While it is down, DeleteRecords removes everything it lacks from
	// the leader: it comes back below the leader's log start, takes up
	// the log from there, catches up and rejoins, and acks=all with all
	// three in sync (min.insync.replicas=3) works again.
	ends, err := kadmc.ListEndOffsets(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	hw, _ := ends.Lookup("r", 0)
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "r", Partition: 0, At: hw.Offset})
	if dr, err := kadmc.DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	} else if r, _ := dr.Lookup("r", 0); r.Err != nil || r.LowWatermark != hw.Offset {
		t.Fatalf("delete records up to %d: %v, low watermark %d", hw.Offset, r.Err, r.LowWatermark)
	}
	sent["r-0"] = nil
	c.Node(3).Restart()
	produce("r", 0, 50, "c")
	for part := range int32(3) {
		produce("spread", part, 50, "c")
	}
	consumeAll(t, ctx, seeds, sent)

	// Every replica holds the same batches at the same offsets.
	for _, n := range c.Nodes() {
		n.Stop()
	}
	for _, tp := range []string{"r-0", "spread-0", "spread-1", "spread-2"} {
		var first [][]byte
		for _, n := range c.Nodes() {
			got := readBatches(t, filepath.Join(n.DataDir(), tp))
			if first == nil {
				first = got
				if len(got) == 0 {
					t.Fatalf("%s: no batches on broker %d", tp, n.ID)
				}
				continue
			}
			if !slices.EqualFunc(first, got, bytes.Equal) {
				t.Fatalf("%s: broker %d holds %d batches, broker 1 %d, and they differ", tp, n.ID, len(got), len(first))
			}
		}
	}
}

func metadataOf(ctx context.Context, addr string, topics ...string) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// consumeAll reads every partition of sent from its start and checks it
// holds exactly the values produced, in order.
func consumeAll(t *testing.T, ctx context.Context, seeds []string, sent map[string][]string) {
	t.Helper()
	topics := map[string]bool{}
	want := 0
	for tp, vs := range sent {
		topics[tp[:len(tp)-2]] = true
		want += len(vs)
	}
	var names []string
	for name := range topics {
		names = append(names, name)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string][]string{}
	n := 0
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for n < want && rctx.Err() == nil {
		cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "refused" {
				// An acks=all that timed out before the in-sync
				// set shrank was appended all the same (as in
				// Kafka); only NOT_ENOUGH_REPLICAS appends nothing.
				return
			}
			tp := r.Topic + "-" + strconv.Itoa(int(r.Partition))
			got[tp] = append(got[tp], string(r.Value))
			n++
		})
	}
	for tp, vs := range sent {
		if !slices.Equal(got[tp], vs) {
			t.Fatalf("%s: read %d records, want %d (first differences: got %v want %v)", tp, len(got[tp]), len(vs), head(got[tp]), head(vs))
		}
	}
}

func head(vs []string) []string { return vs[:min(len(vs), 5)] }

// rawProduce sends one record to partition 0 of topic on the client's
// seed broker with acks and returns the partition's error code.
func rawProduce(ctx context.Context, t *testing.T, addr string, topic string, id [16]byte, acks int16, value string) int16 {
	t.Helper()
	ack := kgo.AllISRAcks()
	if acks == 1 {
		ack = kgo.LeaderAck()
	}
	// franz-go sets a produce request's acks from the client's option.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(ack), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().UnixMilli()
	rec := kmsg.Record{Value: []byte(value)}
	enc := rec.AppendTo(nil)
	rec.Length = int32(len(enc) - 1)
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	b := rb.AppendTo(nil)
	bin.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	bin.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("produce acks=%d: %v", acks, err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// readBatches returns the raw batches of the log in dir (a stopped broker's).
func readBatches(t *testing.T, dir string) [][]byte {
	t.Helper()
	l, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer l.Close()
	var out [][]byte
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, l.LogEndOffset(), nil)
		if err != nil {
			t.Fatalf("read %s at %d: %v", dir, off, err)
		}
		if len(data) == 0 {
			break
		}
		storage.SplitBatches(data, func(b []byte) error {
			h, err := storage.ParseBatchHeader(b)
			if err != nil {
				return err
			}
			out = append(out, slices.Clone(b))
			off = h.NextOffset()
			return nil
		})
	}
	return out
}
