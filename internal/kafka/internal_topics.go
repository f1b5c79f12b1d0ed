package kafka

// Internal topics: the partitions coordinators keep their state in
// (statelog). They are ordinary partitions of the partition log, opened,
// recovered, group-committed, retained and compacted like any other; what
// makes them internal is the Internal flag in the metadata image, which
// Metadata reports as is_internal, and the refusals of client writes
// (Produce: INVALID_TOPIC_EXCEPTION), DeleteTopics, CreatePartitions and
// config changes. Clients can read them (Fetch, ListOffsets,
// DescribeConfigs), as lag monitors and Kafka's OffsetsMessageFormatter do.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Internal topic names (Kafka's).
const (
	OffsetsTopic  = "__consumer_offsets"
	TxnStateTopic = "__transaction_state"
)

// reservedTopic reports names that are never auto-created as ordinary
// topics: Kafka's internal topics, whether or not this broker keeps them
// yet, so a Metadata request naming one cannot make it a user topic.
func reservedTopic(name string) bool {
	switch name {
	case OffsetsTopic, TxnStateTopic, "__share_group_state", "__remote_log_metadata", "__cluster_metadata":
		return true
	}
	return false
}

// Kafka's offsets.topic.segment.bytes: 100 MiB segments keep the cleaner's
// unit of work small for a compacted topic that is mostly overwrites.
const internalSegmentBytes = 100 << 20

// EnsureInternalTopic creates the internal topic name with n partitions and
// cleanup.policy=compact unless it exists, and returns its partitions. An
// existing topic keeps its partition count (as in Kafka, the setting only
// applies at creation: moving ids between partitions would orphan state).
func (b *Broker) EnsureInternalTopic(name string, n int32) ([]statelog.Partition, error) {
	if n < 1 || n > maxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: %s with %d partitions (must be 1-%d)", errInvalidPartitions, name, n, maxPartitionsPerTopic)
	}
	b.mu.Lock()
	ts := b.topics[name]
	if ts == nil {
		t, err := b.createInternal(name, n)
		if err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("kafka: create internal topic %s: %w", name, err)
		}
		ts = &topicState{meta: t}
		b.addParts(ts)
		b.topics[name] = ts
		b.ownChange(name)
		b.log.Info("internal topic created", "topic", name, "partitions", t.Partitions)
	} else if !ts.meta.Internal {
		b.mu.Unlock()
		return nil, fmt.Errorf("kafka: topic %s exists as an ordinary topic; the broker needs it as its internal topic (move its data away and delete it)", name)
	}
	b.mu.Unlock()
	ts = b.topic(name)
	out := make([]statelog.Partition, len(ts.parts))
	for i, p := range ts.parts {
		if b.leads(ts.meta, int32(i)) {
			out[i] = internalPartition{b: b, p: p}
		} else {
			out[i] = remoteStatePartition{}
		}
	}
	return out, nil
}

// createInternal creates the internal topic, or takes it as the image has
// it when another broker created it first (brokers of a new cluster start
// together). A write that lost its quorum leader on the way (an election
// while the cluster starts) may or may not have committed: it is tried
// again, for up to 30 s, and finds the topic if it had.
func (b *Broker) createInternal(name string, n int32) (*metadata.Topic, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		t, err := b.meta.CreateInternalTopic(name, n, map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  strconv.Itoa(internalSegmentBytes),
		})
		if errors.Is(err, metadata.ErrTopicExists) {
			if t = b.meta.Image().Topics[name]; t != nil && !t.Internal {
				return nil, fmt.Errorf("topic %s was created by another broker as an ordinary topic", name)
			}
			if t != nil {
				return t, nil
			}
		} else if err == nil || time.Now().After(deadline) {
			return t, err
		} else {
			b.log.Warn("creating internal topic failed; retrying", "topic", name, "err", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// internalPartition is a partition as a coordinator uses it.
type internalPartition struct {
	b *Broker
	p *partition.Partition
}

var errNotDurable = errors.New("kafka: internal write not durable")

// Append appends recs as one batch under the partition lock (stamped with
// the leader epoch like any batch) and adds the partition to the group
// committer's round; the wait returns once that round made it durable.
func (ip internalPartition) Append(recs []kmsg.Record) (int64, func(context.Context) error, error) {
	return ip.append(recs, storage.EncodeBatch(time.Now().UnixMilli(), recs))
}

// AppendTxn appends recs as one transactional batch of producer pid (no
// sequence: the coordinator is not an idempotent producer).
func (ip internalPartition) AppendTxn(recs []kmsg.Record, pid int64, epoch int16) (int64, func(context.Context) error, error) {
	return ip.append(recs, storage.EncodeTxnBatch(time.Now().UnixMilli(), recs, pid, epoch))
}

func (ip internalPartition) append(recs []kmsg.Record, raw []byte) (int64, func(context.Context) error, error) {
	if len(recs) == 0 {
		return 0, func(context.Context) error { return nil }, nil
	}
	p := ip.p
	off, err := p.Append(raw)
	if err != nil {
		return 0, nil, err
	}
	round := ip.b.committer.AddBytes(p, 1, int64(len(raw)))
	end := off + int64(len(recs))
	return off, func(ctx context.Context) error {
		select {
		case <-round.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.DurableOffset() < end {
			return fmt.Errorf("%w: %s-%d at offset %d", errNotDurable, p.Topic(), p.Index(), off)
		}
		return nil
	}, nil
}

// Replay reads the partition from its log start, skipping control batches.
// Transactional batches (offset commits of transactions coordinated on
// another broker) are passed on like the others: their readers use
// ReplayBatches.
func (ip internalPartition) Replay(fn func(int64, *kmsg.Record) error) error {
	return ip.p.WithLog(func(l *storage.Log) error {
		return storage.ReplayRecords(l, -1, func(h *storage.BatchHeader) (bool, error) {
			return !h.IsControl(), nil
		}, fn)
	})
}

// ReplayBatches reads the partition from its log start with each record's
// batch: transactional batches and markers included.
func (ip internalPartition) ReplayBatches(fn func(statelog.Batch, int64, *kmsg.Record) error) error {
	var cur statelog.Batch
	return ip.p.WithLog(func(l *storage.Log) error {
		return storage.ReplayRecords(l, -1, func(h *storage.BatchHeader) (bool, error) {
			cur = statelog.Batch{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch,
				Transactional: h.IsTransactional(), Control: h.IsControl()}
			return true, nil
		}, func(off int64, r *kmsg.Record) error {
			b := cur
			if b.Control {
				// A marker's key: version (int16), type (int16, 1 commit).
				b.Commit = len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 1
			}
			return fn(b, off, r)
		})
	})
}
