package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startRawProducers runs --prebuilt-batches: each sender sends produce
// requests carrying one pre-encoded, uncompressed record batch of about
// --batch-size bytes (records of --message-size random bytes, no keys), acks
// as configured, waiting for each response before the next. The client does
// no per-record work, so the run measures the broker's bandwidth rather than
// the load generator's. Latency is per request; every record of an
// acknowledged batch counts. The senders are spread over --clients clients,
// each with its own produce connection to a broker (one client by default:
// all requests then share one connection).
//
// With one topic each sender walks its partitions in turn (starting at its
// own); with --topic-count above 1 each request goes to a partition drawn at
// random from every partition of every topic. The second is the many-
// partitions shape without the client's cost per partition: a Kafka
// producer's drain visits every partition it holds for each request (kgo's
// sink and the Java RecordAccumulator alike), so with thousands of
// partitions a record-level client measures itself.
func (r *run) startRawProducers(ctx context.Context) (*workerSet, error) {
	ws := &workerSet{done: make(chan struct{})}
	for i := 0; i < r.cfg.clientCount(); i++ {
		cl, err := kgo.NewClient(append(r.baseOpts(), kgo.RequiredAcks(rawAcks(r.cfg.Acks)), kgo.DisableIdempotentWrite())...)
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("bench: producer client: %w", err)
		}
		ws.clients = append(ws.clients, cl)
	}
	targets, err := r.rawTargets(ctx, ws.clients[0])
	if err != nil {
		ws.close()
		return nil, err
	}
	batch, n := buildRawBatch(r.cfg.MessageSize, r.cfg.BatchSize)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			r.rawSender(ctx, ws.clients[id%len(ws.clients)], targets, id, batch, n)
		}(i)
	}
	go func() { wg.Wait(); close(ws.done) }()
	return ws, nil
}

func rawAcks(acks int) kgo.Acks {
	switch acks {
	case 0:
		return kgo.NoAck()
	case 1:
		return kgo.LeaderAck()
	}
	return kgo.AllISRAcks()
}

// rawTarget is one partition a raw sender writes to.
type rawTarget struct {
	topic     string
	topicID   [16]byte
	partition int32
	leader    int32
}

// rawTargets lists every partition of the bench's topics with its leader
// (Produce v13+ names topics by id), in topic then partition order.
func (r *run) rawTargets(ctx context.Context, cl *kgo.Client) ([]rawTarget, error) {
	var out []rawTarget
	for _, topic := range r.cfg.topics() {
		resp, err := r.topicMetadata(ctx, cl, topic)
		if err != nil {
			return nil, err
		}
		for _, mt := range resp.Topics {
			parts := mt.Partitions
			slices.SortFunc(parts, func(a, b kmsg.MetadataResponseTopicPartition) int { return cmp.Compare(a.Partition, b.Partition) })
			for _, p := range parts {
				out = append(out, rawTarget{topic: topic, topicID: mt.TopicID, partition: p.Partition, leader: p.Leader})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: topic %s has no partitions", r.cfg.Topic)
	}
	return out, nil
}

// buildRawBatch encodes one v2 batch of records of size bytes each, as many
// as fit in about batchBytes (at least one), with random values.
func buildRawBatch(size, batchBytes int) ([]byte, int) {
	n := max(1, batchBytes/(size+16))
	value := make([]byte, size)
	var body []byte
	for i := 0; i < n; i++ {
		rand.Read(value)
		rec := kmsg.Record{OffsetDelta: int32(i), Value: value}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: body,
	}
	b.Length = int32(49 + len(body))
	out := b.AppendTo(nil)
	crc := crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli))
	out[17], out[18], out[19], out[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return out, n
}

func (r *run) rawSender(ctx context.Context, cl *kgo.Client, targets []rawTarget, id int, batch []byte, n int) {
	random := r.cfg.TopicCount > 1
	rng := mrand.New(mrand.NewPCG(r.runID, uint64(id)))
	for i := id; ; i++ {
		if r.stopping() || ctx.Err() != nil {
			return
		}
		measured := r.measuring()
		t := targets[i%len(targets)]
		if random {
			t = targets[rng.IntN(len(targets))]
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks = int16(r.cfg.Acks)
		req.TimeoutMillis = int32(deliveryTimeout / time.Millisecond)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = t.topic, t.topicID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = t.partition
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		t0 := time.Now()
		r.sent.Add(int64(n))
		resp, err := cl.Broker(int(t.leader)).Request(ctx, req)
		done := time.Now()
		if err == nil && r.cfg.Acks != 0 {
			err = produceErr(resp.(*kmsg.ProduceResponse))
		}
		switch {
		case err != nil && ctx.Err() != nil:
			r.cut.Add(int64(n))
			return
		case err != nil:
			r.st.fail(err)
			sleepUntil(ctx, done.Add(failureBackoff))
		default:
			r.acked.Add(int64(n))
			r.st.add(measured, done.Sub(t0), int64(n), int64(n*r.cfg.MessageSize), done)
		}
	}
}

func produceErr(resp *kmsg.ProduceResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	if len(resp.Topics) == 0 {
		return errors.New("empty produce response")
	}
	return nil
}

// topicMetadata asks for the bench topic's metadata.
func (r *run) topicMetadata(ctx context.Context, cl *kgo.Client, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("bench: metadata: %w", err)
	}
	return resp, nil
}
