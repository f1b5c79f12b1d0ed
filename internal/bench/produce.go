package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("must be none, gzip, snappy, lz4 or zstd, got %q", name)
}

func (r *run) producerOpts() []kgo.Opt {
	codec, _ := compressionCodec(r.cfg.Compression)
	opts := append(r.baseOpts(),
		kgo.DefaultProduceTopic(r.cfg.Topic),
		kgo.ProducerLinger(time.Duration(r.cfg.LingerMs)*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(r.cfg.BatchSize)),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.MaxBufferedRecords(min(max(10_000, 2*r.cfg.Concurrency*r.cfg.Inflight), 10_000_000)),
	)
	switch r.cfg.Acks {
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	return opts
}

// startProducers starts cfg.Concurrency senders over cfg.clientCount()
// clients. Each sender has one record in flight: it produces, waits for the
// acknowledgement, records the latency, then sends the next. done closes
// when every sender has returned; stopping, the budget or ctx end a sender.
func (r *run) startProducers(ctx context.Context, _ chan struct{}) (*workerSet, error) {
	ws := &workerSet{done: make(chan struct{})}
	for i := 0; i < r.cfg.clientCount(); i++ {
		cl, err := kgo.NewClient(r.producerOpts()...)
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("bench: producer client: %w", err)
		}
		ws.clients = append(ws.clients, cl)
	}
	// waitCtx ends pacing and burst pauses at stop; in-flight produces keep
	// ctx so they complete (or fail) on their own.
	waitCtx, cancelWait := context.WithCancel(ctx)
	ws.stopFns = append(ws.stopFns, cancelWait)
	p := newPacer(r.cfg.RateLimit)
	keys := keyGen{pattern: r.cfg.KeyPattern, seq: new(atomic.Uint64)}
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			r.sender(ctx, waitCtx, ws.clients[id%len(ws.clients)], uint32(id), p, keys)
		}(i)
	}
	go func() { wg.Wait(); cancelWait(); close(ws.done) }()
	return ws, nil
}

func (r *run) sender(ctx, waitCtx context.Context, cl *kgo.Client, id uint32, p *pacer, keys keyGen) {
	if r.cfg.Inflight > 1 {
		r.asyncSender(ctx, waitCtx, cl, id, p, keys)
		return
	}
	rng := rand.New(rand.NewPCG(r.runID, uint64(id)))
	withHeader := r.cfg.MessageSize >= headerSize
	topics := r.cfg.topics()
	maxSize := r.cfg.MessageSize
	if r.cfg.LoadPattern == "mixed" {
		maxSize = r.cfg.MessageSize * 3 / 2
	}
	buf := make([]byte, max(maxSize, headerSize))
	var keyBuf []byte
	for seq := uint64(0); ; seq++ {
		if !r.proceed(ctx, waitCtx, p) {
			return
		}
		measured := r.measuring()
		if measured && !r.budget.take() {
			return
		}
		size := messageSizeFor(r.cfg.MessageSize, r.cfg.LoadPattern, withHeader, rng)
		value := buf[:size]
		if withHeader {
			fillBody(value[headerSize:], r.cfg.PayloadPattern, rng)
		} else {
			fillBody(value, r.cfg.PayloadPattern, rng)
		}
		keyBuf = keys.next(keyBuf, rng)
		// kgo holds Key and Value until the acknowledgement; the loop
		// reuses both buffers only after ProduceSync returns.
		rec := &kgo.Record{Topic: pickTopic(topics, rng), Key: keyBuf, Value: value}
		t0 := time.Now()
		if withHeader {
			encodeHeader(value, header{RunID: r.runID, Producer: id, Seq: seq, SentNs: t0.UnixNano()})
		}
		r.sent.Add(1)
		err := cl.ProduceSync(ctx, rec).FirstErr()
		done := time.Now()
		if err != nil && ctx.Err() != nil {
			r.cut.Add(1) // the run was interrupted: neither a success nor the broker's failure
			return
		}
		if err != nil {
			r.st.fail(err)
			if r.val != nil && withHeader {
				r.val.produceFailed(id, seq)
			}
			sleepUntil(waitCtx, done.Add(failureBackoff)) // no hot loop on a dead broker
			continue
		}
		r.acked.Add(1)
		r.acks.add(rec.Topic, rec.Partition)
		if r.cfg.Mode == ModeProduce { // round-trip: the consumers count and time records
			r.st.add(measured, done.Sub(t0), 1, int64(size), done)
		}
	}
}

// asyncSender keeps up to cfg.Inflight records in flight: it produces without
// waiting, and each acknowledgement (a kgo callback) frees a slot. This is
// the client-batching shape (many records in flight, linger, big batches),
// where one goroutine per record in flight would cost the client more CPU
// than the broker spends.
func (r *run) asyncSender(ctx, waitCtx context.Context, cl *kgo.Client, id uint32, p *pacer, keys keyGen) {
	rng := rand.New(rand.NewPCG(r.runID, uint64(id)))
	withHeader := r.cfg.MessageSize >= headerSize
	topics := r.cfg.topics()
	slots := make(chan struct{}, r.cfg.Inflight)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	var keyBuf []byte
	for seq := uint64(0); ; seq++ {
		if !r.proceed(ctx, waitCtx, p) {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-waitCtx.Done():
			return
		}
		measured := r.measuring()
		if measured && !r.budget.take() {
			<-slots
			return
		}
		size := messageSizeFor(r.cfg.MessageSize, r.cfg.LoadPattern, withHeader, rng)
		value := make([]byte, size) // kgo holds it until the ack: one buffer per record
		if withHeader {
			fillBody(value[headerSize:], r.cfg.PayloadPattern, rng)
		} else {
			fillBody(value, r.cfg.PayloadPattern, rng)
		}
		keyBuf = keys.next(keyBuf[:0:0], rng) // fresh key slice per record, for the same reason
		t0 := time.Now()
		if withHeader {
			encodeHeader(value, header{RunID: r.runID, Producer: id, Seq: seq, SentNs: t0.UnixNano()})
		}
		r.sent.Add(1)
		inflight.Add(1)
		seq := seq
		cl.Produce(ctx, &kgo.Record{Topic: pickTopic(topics, rng), Key: keyBuf, Value: value}, func(rec *kgo.Record, err error) {
			defer inflight.Done()
			defer func() { <-slots }()
			done := time.Now()
			switch {
			case err != nil && ctx.Err() != nil:
				r.cut.Add(1)
			case err != nil:
				r.st.fail(err)
				if r.val != nil && withHeader {
					r.val.produceFailed(id, seq)
				}
			default:
				r.acked.Add(1)
				r.acks.add(rec.Topic, rec.Partition)
				if r.cfg.Mode == ModeProduce {
					r.st.add(measured, done.Sub(t0), 1, int64(size), done)
				}
			}
		})
	}
}

// pickTopic is a record's topic: the only one, or a random one of several
// (--topic-count), so random keys spread records over every partition of
// every topic.
func pickTopic(topics []string, rng *rand.Rand) string {
	if len(topics) == 1 {
		return topics[0]
	}
	return topics[rng.IntN(len(topics))]
}

// proceed waits for the next operation's turn (burst phase, rate limit) and
// reports whether the worker should go on: false once the run is stopping
// or ctx ended.
func (r *run) proceed(ctx, waitCtx context.Context, p *pacer) bool {
	if r.stopping() || ctx.Err() != nil {
		return false
	}
	if r.cfg.LoadPattern == "bursty" && !burstGate(waitCtx, r.start) {
		return false
	}
	return p.wait(waitCtx) && !r.stopping()
}
