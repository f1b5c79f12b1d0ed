package kafka

// Behavior:
//
//   - Each partition's records field must be whole v2 batches; every batch is
//     validated (length, magic 2, CRC-32C, record count) before anything is
//     appended. Bad CRC -> CORRUPT_MESSAGE, bad format -> INVALID_RECORD,
//     magic 0/1 -> UNSUPPORTED_FOR_MESSAGE_FORMAT, above max.message.bytes ->
//     MESSAGE_TOO_LARGE, a timestamp beyond message.timestamp.*.max.ms ->
//     INVALID_TIMESTAMP.
//   - Appends happen synchronously on the connection's reader goroutine, so
//     pipelined requests from one producer land in order. acks=1 and acks=-1
//     are answered after the group committer's fsync round covering the
//     append completes (single node: both mean "durable on this broker");
//     acks=0 gets no response at all.
//   - Idempotent producers: per producer and partition the last five batches
//     are remembered; a duplicate is acknowledged with its original offset and
//     not re-appended; a gap answers OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch
//     INVALID_PRODUCER_EPOCH.
//   - Back-pressure: while appended-but-unsynced bytes are at the produce
//     profile's buffer bound, a produce waits before appending (its
//     connection is not read meanwhile) and answers REQUEST_TIMED_OUT if the
//     bound still holds at its timeout. Nothing is dropped.
//   - Transactional batches are appended only to partitions in the
//     producer's ongoing transaction (AddPartitionsToTxn), else
//     INVALID_TXN_STATE; a fenced epoch answers INVALID_PRODUCER_EPOCH (see
//     txn.go). Control batches from clients are refused (INVALID_TXN_STATE).
//   - Produce never auto-creates topics (Kafka creates on Metadata only).
//   - Internal topics (__consumer_offsets) answer INVALID_TOPIC_EXCEPTION
//     and nothing is written: only the coordinators append there.
//
// Version notes:
//   - v3 is the minimum (KIP-896); v13 addresses topics by id (KIP-516).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type producePending struct {
	part *partition.Partition
	resp *kmsg.ProduceResponseTopicPartition
	end  int64 // durable offset needed
	// ls is the replication state of a replicated partition produced to
	// with acks=all (nil otherwise): the high watermark must pass end, with
	// at least minISR replicas in sync (replication.go).
	ls     *leaderState
	minISR int
}

func handleProduce(b *Broker, ctx context.Context, req *wire.Request) (wire.Reply, error) {
	r, ok := req.Body.(*kmsg.ProduceRequest)
	if !ok {
		return wire.Reply{}, errWrongType
	}
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	resp.SetVersion(req.Version)
	if r.Acks != 0 && r.Acks != 1 && r.Acks != -1 {
		fillProduceError(r, resp, kerr.InvalidRequiredAcks)
		return wire.Reply{Resp: resp}, nil
	}
	if r.TransactionID != nil && b.txns.Load() == nil {
		fillProduceError(r, resp, kerr.TransactionalIDAuthorizationFailed)
		return wire.Reply{Resp: resp}, nil
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// Back-pressure: while the unsynced bytes are at the profile's buffer
	// bound, this connection's reader waits here (so the client is not read
	// from) until a round frees space, or answers REQUEST_TIMED_OUT.
	if err := b.committer.WaitBuffer(time.Now().Add(timeout)); err != nil {
		if r.Acks == 0 {
			return wire.Reply{}, nil
		}
		fillProduceError(r, resp, kerr.RequestTimedOut)
		return wire.Reply{Resp: resp}, nil
	}
	now := time.Now().UnixMilli()
	tx := txnProducer{id: r.TransactionID, implicit: b.implicitTxnAdd(req.Version)}
	switch {
	case tx.id != nil && !b.coordinates(TxnStateTopic, *tx.id):
		b.enrolRemote(ctx, req.Version, r, &tx) // the coordinator is another broker
	case tx.implicit && tx.id != nil:
		tx.err = b.enrolProduce(req.Version, r)
	}
	var pend []producePending
	var round *commit.Round
	replicated := false // some partition waits for its followers (acks=all)
	var leaders []int32 // of partitions answered NOT_LEADER_OR_FOLLOWER
	// Slices are sized up front so pointers into them stay valid.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		st := &resp.Topics[ti]
		st.Default()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		ts := b.topicFor(req.Version, rt.Topic, rt.TopicID)
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			p, missing := b.servePartition(ts, rp.Partition, req.Version)
			switch {
			case p == nil:
				sp.ErrorCode = missing
				if missing == kerr.NotLeaderForPartition.Code { // KIP-951
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = b.leaderOf(b.meta.Image(), ts.meta, rp.Partition)
					if sp.CurrentLeader.LeaderID >= 0 {
						leaders = append(leaders, sp.CurrentLeader.LeaderID)
					}
				}
			case ts.meta.Internal:
				// Kafka: "Cannot append to internal topic"; only the
				// coordinators write there (internal_topics.go).
				sp.ErrorCode = kerr.InvalidTopicException.Code
			default:
				var ls *leaderState
				minISR := 0
				if r.Acks == -1 {
					if ls = b.replicatedState(ts, rp.Partition); ls != nil {
						minISR = int(b.topicInt(ts.meta, "min.insync.replicas"))
						if n := ls.inSync(); n < minISR {
							sp.ErrorCode = kerr.NotEnoughReplicas.Code
							sp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("%d replicas in sync, min.insync.replicas is %d", n, minISR))
							continue
						}
						replicated = true
					}
				}
				if end, rd := b.producePartition(p, ts.meta, tx, rp.Records, now, sp); rd != nil {
					round = rd
					pend = append(pend, producePending{part: p, resp: sp, end: end, ls: ls, minISR: minISR})
				}
			}
		}
	}
	if r.Acks == 0 {
		return wire.Reply{}, nil
	}
	for _, e := range b.endpoints(leaders) {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: e.id, Host: e.host, Port: e.port, Rack: e.rack})
	}
	if round == nil {
		return wire.Reply{Resp: resp}, nil
	}
	if replicated {
		deadline := time.Now().Add(timeout)
		ready := make(chan struct{})
		go func() {
			defer close(ready)
			waitDurable(round, pend, timeout)
			b.waitReplicated(pend, deadline)
		}()
		return wire.Reply{Later: func() kmsg.Response { <-ready; return resp }, Ready: ready}, nil
	}
	return wire.Reply{Later: func() kmsg.Response {
		waitDurable(round, pend, timeout)
		return resp
	}, Ready: round.Done()}, nil
}

// waitReplicated waits, for the replicated partitions of an acks=all
// produce, until the high watermark passes what was appended (every
// in-sync replica has it durable), answering REQUEST_TIMED_OUT at the
// deadline, NOT_LEADER_OR_FOLLOWER when the broker shuts down meanwhile
// (EndWaits), and NOT_ENOUGH_REPLICAS_AFTER_APPEND when fewer than
// min.insync.replicas are in sync by then (replication.go).
func (b *Broker) waitReplicated(pend []producePending, deadline time.Time) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for i := range pend {
		pp := &pend[i]
		if pp.ls == nil || pp.resp == nil || pp.resp.ErrorCode != 0 {
			continue
		}
		for {
			moved := b.repl.moved.wait()
			if pp.part.HighWatermark() >= pp.end {
				break
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				pp.resp.ErrorCode = kerr.RequestTimedOut.Code
				pp.resp.BaseOffset = -1
				break
			}
			if t == nil {
				t = time.NewTimer(wait)
			}
			select {
			case <-moved:
			case <-t.C:
				t.Reset(time.Hour) // drained; the deadline check above ends the loop
			case <-b.waits.Done():
				// Shutting down: the client retries elsewhere (an
				// idempotent producer's retry is deduplicated).
				pp.resp.ErrorCode = kerr.NotLeaderForPartition.Code
				pp.resp.BaseOffset = -1
			}
			if pp.resp.ErrorCode != 0 {
				break
			}
		}
		if pp.resp.ErrorCode == 0 {
			if n := pp.ls.inSync(); n < pp.minISR {
				pp.resp.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
				pp.resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("%d replicas in sync, min.insync.replicas is %d", n, pp.minISR))
			}
		}
	}
}

// waitDurable waits for the round (rounds finish in order, so the last one
// covers every earlier append of the request), then sets per-partition errors
// for anything that did not become durable.
func waitDurable(round *commit.Round, pend []producePending, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-round.Done():
	case <-t.C:
	}
	for i := range pend {
		pp := &pend[i]
		if pp.resp == nil || pp.part.DurableOffset() >= pp.end {
			continue
		}
		pp.resp.BaseOffset = -1
		if pp.part.Failed() {
			pp.resp.ErrorCode = kerr.KafkaStorageError.Code
		} else {
			pp.resp.ErrorCode = kerr.RequestTimedOut.Code
		}
	}
}

// producePartition validates and appends one partition's records. It returns
// the durable offset to wait for and the commit round, or a nil round when
// there is nothing to wait for (an error was set in sp).
func (b *Broker) producePartition(p *partition.Partition, t *metadata.Topic, txnID txnProducer, records []byte, now int64, sp *kmsg.ProduceResponseTopicPartition) (int64, *commit.Round) {
	maxBytes := b.topicInt(t, "max.message.bytes")
	logAppend := b.topicConfig(t, "message.timestamp.type") == "LogAppendTime"
	before := b.topicInt(t, "message.timestamp.before.max.ms")
	after := b.topicInt(t, "message.timestamp.after.max.ms")
	compact := b.isCompacted(t) // cleaner.go: keyless records are rejected
	var raws [][]byte
	var hdrs []storage.BatchHeader
	err := storage.SplitBatches(records, func(batch []byte) error {
		h, err := storage.ValidateBatch(batch)
		if err != nil {
			return err
		}
		if int64(len(batch)) > maxBytes {
			return errTooLarge
		}
		if h.IsControl() {
			return errTxn
		}
		if h.IsTransactional() {
			if err := b.txnProduceErr(txnID, p, &h); err != nil {
				return err
			}
		}
		if !logAppend && (h.MaxTimestamp > now+after || (h.MaxTimestamp >= 0 && before < 1<<62 && h.MaxTimestamp < now-before)) {
			return errTimestamp
		}
		if compact {
			if err := requireKeys(batch); err != nil {
				return err
			}
		}
		if logAppend {
			storage.SetLogAppendTime(batch, now)
		}
		raws = append(raws, batch)
		hdrs = append(hdrs, h)
		return nil
	})
	if err == nil && len(raws) == 0 {
		err = storage.ErrBatchTooShort
	}
	if err != nil {
		sp.ErrorCode = produceErrCode(err)
		sp.ErrorMessage = kmsg.StringPtr(err.Error())
		b.log.Debug("produce rejected", "topic", p.Topic(), "partition", p.Index(), "err", err)
		return 0, nil
	}
	res := p.AppendBatches(raws, hdrs)
	if res.Err != nil {
		sp.ErrorCode = partitionErr(res.Err).Code
		return 0, nil
	}
	b.stats.recordsIn.Add(res.Records)
	b.stats.bytesIn.Add(res.Bytes)
	sp.BaseOffset = res.Base
	sp.LogStartOffset = res.LogStart
	if logAppend {
		sp.LogAppendTime = now
	}
	return res.LastEnd, b.committer.AddBytes(p, res.Batches, res.Bytes)
}

var (
	errTooLarge  = errors.New("record batch larger than max.message.bytes")
	errTxn       = errors.New("transactional and control batches are not accepted yet")
	errTimestamp = errors.New("record timestamp outside message.timestamp.before/after.max.ms")
	errWrongType = errors.New("kafka: request body of unexpected type")
)

func produceErrCode(err error) int16 {
	if code, ok := kerrCode(err); ok {
		return code
	}
	switch {
	case errors.Is(err, storage.ErrBatchCRC):
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrBatchMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, errTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, errTxn):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, errTimestamp):
		return kerr.InvalidTimestamp.Code
	default:
		return kerr.InvalidRecord.Code
	}
}

func fillProduceError(r *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, e *kerr.Error) {
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = e.Code
			sp.BaseOffset = -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
}
