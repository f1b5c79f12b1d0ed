package kafka

// Replication, the follower's side (issue 14, slice 3; the leader's side is
// replication.go). For every other broker that leads partitions this broker
// holds a replica of, one fetcher goroutine carries all of them, as Kafka's
// replica fetcher threads do: a Fetch with this broker's id as the replica
// (ReplicaID before v15, ReplicaState from v15), sessionless, each
// partition at its local log end. The leader answers with its batches up to
// its durable end; the fetcher checks each batch's CRC, appends them as they
// are (offsets, leader epochs, producer fields kept: partition
// AppendReplica, which updates the producer and transaction state too),
// hands them to the group committer, and fetches again only once that
// round made them durable, so every fetch offset the leader sees is durable
// here. The leader's log start (retention, DeleteRecords) is followed up to
// this replica's own end. The set of fetchers follows the metadata image
// (refreshFetchers, after every change). A follower serves no client
// (NOT_LEADER_OR_FOLLOWER) until leadership can move to it (slice 4).

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replica fetch sizes and waits.
const (
	replicaFetchMaxWait   = 500 * time.Millisecond
	replicaFetchMaxBytes  = 16 << 20
	replicaFetchPartBytes = 1 << 20
	replicaBackoffMin     = 100 * time.Millisecond
	replicaBackoffMax     = 2 * time.Second
)

// fetchers are the running replica fetchers, one per source broker.
type fetchers struct {
	mu      sync.Mutex
	running map[int32]*fetcher
	closed  bool
}

type fetcher struct {
	leader int32
	mu     sync.Mutex
	parts  []followedPart
	wake   chan struct{} // buffered 1: the partitions changed
	cancel context.CancelFunc
	done   chan struct{}
}

// followedPart is a partition this broker follows.
type followedPart struct {
	p     *partition.Partition
	topic string
	id    metadata.TopicID
	index int32
}

// refreshFetchers starts, updates and stops fetchers so that each follows
// what the image says this broker follows from its leader.
func (b *Broker) refreshFetchers() {
	self := b.opts.NodeID
	want := map[int32][]followedPart{}
	b.mu.RLock()
	for name, ts := range b.topics {
		t := ts.meta
		if len(t.Replicas) == 0 || len(t.Replicas[0]) < 2 {
			continue // one replica per partition: nothing to follow
		}
		for i, p := range ts.parts {
			if i >= len(t.Replicas) {
				break
			}
			reps := t.Replicas[i]
			if len(reps) < 2 || reps[0] == self || !slices.Contains(reps[1:], self) {
				continue
			}
			want[reps[0]] = append(want[reps[0]], followedPart{p: p, topic: name, id: t.ID, index: int32(i)})
		}
	}
	b.mu.RUnlock()

	f := &b.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	for leader, ft := range f.running {
		if len(want[leader]) == 0 {
			ft.cancel()
			<-ft.done
			delete(f.running, leader)
			b.log.Info("replica fetcher stopped", "leader", leader)
		}
	}
	for leader, parts := range want {
		ft := f.running[leader]
		if ft == nil {
			ctx, cancel := context.WithCancel(context.Background())
			ft = &fetcher{leader: leader, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
			if f.running == nil {
				f.running = map[int32]*fetcher{}
			}
			f.running[leader] = ft
			go func() { defer close(ft.done); b.runFetcher(ctx, ft) }()
			b.log.Info("replica fetcher started", "leader", leader, "partitions", len(parts))
		}
		ft.mu.Lock()
		ft.parts = parts
		ft.mu.Unlock()
		select {
		case ft.wake <- struct{}{}:
		default:
		}
	}
}

// stopFetchers stops every fetcher for good (Close).
func (b *Broker) stopFetchers() {
	f := &b.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, ft := range f.running {
		ft.cancel()
	}
	for _, ft := range f.running {
		<-ft.done
	}
	f.running = nil
}

// runFetcher copies ft's partitions from ft.leader until ctx ends.
func (b *Broker) runFetcher(ctx context.Context, ft *fetcher) {
	backoff := replicaBackoffMin
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, replicaBackoffMax)
	}
	var lastErr string
	// skipTo: partitions whose log ended below their leader's log start
	// (down while retention or DeleteRecords removed what they lacked)
	// fetch from the leader's log start instead; the gap is left behind
	// the log start they take over (followLogStart).
	skipTo := map[*partition.Partition]int64{}
	for ctx.Err() == nil {
		ft.mu.Lock()
		parts := ft.parts
		ft.mu.Unlock()
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
			case <-ft.wake:
			}
			continue
		}
		req, byKey := b.replicaFetchRequest(parts, skipTo)
		if len(byKey) == 0 {
			pause()
			continue
		}
		resp, err := b.askPeer(ctx, ft.leader, req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				b.log.Warn("replica fetch failed; retrying", "leader", ft.leader, "err", err)
			}
			pause()
			continue
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 {
			if msg := kerr.ErrorForCode(fr.ErrorCode).Error(); msg != lastErr {
				lastErr = msg
				b.log.Warn("replica fetch refused; retrying", "leader", ft.leader, "err", msg)
			}
			pause()
			continue
		}
		round, failed := b.applyReplicaFetch(fr, byKey, skipTo, &lastErr)
		if round != nil {
			select {
			case <-ctx.Done():
				return
			case <-round.Done():
			}
		}
		if failed && round == nil {
			pause()
			continue
		}
		backoff, lastErr = replicaBackoffMin, ""
	}
}

type replicaKey struct {
	topic     string
	id        metadata.TopicID
	partition int32
}

// replicaFetchRequest builds one fetch of parts, each from its log end (or
// from skipTo's offset past it).
func (b *Broker) replicaFetchRequest(parts []followedPart, skipTo map[*partition.Partition]int64) (*kmsg.FetchRequest, map[replicaKey]followedPart) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = b.opts.NodeID
	req.ReplicaState.ID = b.opts.NodeID
	req.ReplicaState.Epoch = -1
	req.MaxWaitMillis = int32(replicaFetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1
	byKey := make(map[replicaKey]followedPart, len(parts))
	idx := map[string]int{}
	for _, fp := range parts {
		end := fp.p.LogEnd()
		if end < 0 {
			continue // cannot be opened now (logged by the partition); retried
		}
		if to, ok := skipTo[fp.p]; ok {
			if to > end {
				end = to
			} else {
				delete(skipTo, fp.p)
			}
		}
		i, ok := idx[fp.topic]
		if !ok {
			i = len(req.Topics)
			idx[fp.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = fp.topic, fp.id
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.index
		rp.FetchOffset = end
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = replicaFetchPartBytes
		rp.CurrentLeaderEpoch = -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		byKey[replicaKey{topic: fp.topic, partition: fp.index}] = fp
		byKey[replicaKey{id: fp.id, partition: fp.index}] = fp
	}
	return req, byKey
}

// applyReplicaFetch appends what the leader sent and returns the commit
// round that makes it durable (nil if nothing was appended) and whether
// some partition failed.
func (b *Broker) applyReplicaFetch(fr *kmsg.FetchResponse, byKey map[replicaKey]followedPart, skipTo map[*partition.Partition]int64, lastErr *string) (*commit.Round, bool) {
	var round *commit.Round
	failed := false
	note := func(fp followedPart, msg string, err error) {
		failed = true
		if s := msg + err.Error(); s != *lastErr {
			*lastErr = s
			b.log.Warn(msg, "topic", fp.topic, "partition", fp.index, "err", err)
		}
	}
	for _, rt := range fr.Topics {
		for _, rp := range rt.Partitions {
			key := replicaKey{topic: rt.Topic, partition: rp.Partition}
			if rt.TopicID != ([16]byte{}) {
				key = replicaKey{id: rt.TopicID, partition: rp.Partition}
			}
			fp, ok := byKey[key]
			if !ok {
				continue
			}
			if rp.ErrorCode == kerr.OffsetOutOfRange.Code {
				if end := fp.p.LogEnd(); end >= 0 && rp.LogStartOffset > end {
					// What this replica lacks is gone from the leader
					// too: take up its log from the leader's start.
					b.log.Warn("replica ended below its leader's log start (retention or DeleteRecords ran while it was behind); fetching on from there",
						"topic", fp.topic, "partition", fp.index, "log_end", end, "leader_log_start", rp.LogStartOffset)
					skipTo[fp.p] = rp.LogStartOffset
					continue
				}
			}
			if rp.ErrorCode != 0 {
				note(fp, "replica fetch of a partition refused by its leader", kerr.ErrorForCode(rp.ErrorCode))
				continue
			}
			var raws [][]byte
			var hdrs []storage.BatchHeader
			storage.SplitBatches(rp.RecordBatches, func(batch []byte) error {
				h, err := storage.ValidateBatch(batch)
				if err != nil {
					return err // a damaged or cut batch: fetched again from here
				}
				raws = append(raws, batch)
				hdrs = append(hdrs, h)
				return nil
			})
			if len(raws) > 0 {
				n, bytes, err := fp.p.AppendReplica(raws, hdrs)
				if n > 0 {
					round = b.committer.AddBytes(fp.p, n, bytes)
				}
				if err != nil {
					note(fp, "replica append failed", err)
					continue
				}
			}
			b.followLogStart(fp, rp.LogStartOffset)
		}
	}
	return round, failed
}

// followLogStart moves the replica's log start up to the leader's
// (retention, DeleteRecords), never past what it has made durable.
func (b *Broker) followLogStart(fp followedPart, leaderStart int64) {
	if leaderStart <= 0 {
		return
	}
	off, err := fp.p.Offsets()
	if err != nil {
		return
	}
	to := min(leaderStart, off.LogEnd, fp.p.DurableOffset())
	if to <= off.LogStart {
		return
	}
	if _, _, err := fp.p.SetLogStartOffset(to); err != nil && !errors.Is(err, partition.ErrDeleted) {
		b.log.Warn("replica could not follow its leader's log start", "topic", fp.topic, "partition", fp.index, "err", err)
	}
}
