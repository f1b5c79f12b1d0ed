package kafka

// Replication, the leader's side (issue 14, slice 3). A partition with more
// than one replica is copied by its followers (fetcher.go), which fetch from
// the leader as Kafka's replica fetchers do (Fetch with the replica's id)
// and fetch an offset only once everything below it is durable on their
// own disk. The leader serves followers up to its own durable end, never
// beyond: a follower never holds what its leader could still lose in a
// crash. Each follower's fetch offset is therefore its durable log end.
//
// The leader keeps, per replicated partition, the followers' progress and
// the in-sync set: a follower is in sync while it has caught up with the
// leader's durable end within replica.lag.time.max.ms (Kafka's rule: a
// fetch at or past the leader's end, or past the end the leader had at the
// follower's previous fetch, counts as caught up); one behind longer
// leaves the set, and one that catches up with the high watermark joins it
// again. The high watermark is the leader's durable end bounded by the
// smallest fetch offset of the in-sync followers (partition
// SetHighWatermarkCap), and it never moves back. Consumers read up to it;
// acks=all waits until it passes the produce's last offset, and
// min.insync.replicas is checked against the in-sync set before the append
// (NOT_ENOUGH_REPLICAS) and after the wait (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
//
// This slice keeps the in-sync set in the leader's memory: with no
// leadership changes yet (slice 4) nothing else needs it. A leader that
// starts counts every replica in sync from that moment, so a replica that
// is down leaves the set after replica.lag.time.max.ms, and it takes its
// own durable end as the high watermark's floor (its log is the partition's
// record until elections exist). Metadata reports every replica as in
// sync until the set is recorded in the metadata log (AlterPartition,
// slice 4).

import (
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/partition"
)

// defaultReplicaLagMax is Kafka's replica.lag.time.max.ms.
const defaultReplicaLagMax = 30 * time.Second

// replication is the leader side of every replicated partition this broker
// leads.
type replication struct {
	mu      sync.Mutex
	leaders map[*partition.Partition]*leaderState
	lagMax  time.Duration
	log     *slog.Logger
	moved   broadcast // a high watermark or an in-sync set changed
}

// leaderState is one replicated partition's followers as its leader sees
// them.
type leaderState struct {
	mu        sync.Mutex
	p         *partition.Partition
	followers map[int32]*followerProgress
	isr       []int32 // the followers in sync (the leader is always in sync)
	floor     int64   // the high watermark never goes below it
	cap       int64   // the cap set on p (math.MaxInt64: no follower in sync)
}

type followerProgress struct {
	fetched      int64     // its last fetch offset: its durable log end (-1: not yet)
	caughtUp     time.Time // the last time it had caught up with the leader
	lastFetch    time.Time
	endAtLastFet int64 // the leader's durable end at its last fetch
}

// broadcast wakes every waiter at once.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next fire.
func (bc *broadcast) wait() <-chan struct{} {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.ch == nil {
		bc.ch = make(chan struct{})
	}
	return bc.ch
}

func (bc *broadcast) fire() {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.ch != nil {
		close(bc.ch)
		bc.ch = nil
	}
}

// leaderState returns p's replication state, made on first use with every
// follower of replicas (the leader first) in sync from now.
func (r *replication) state(p *partition.Partition, replicas []int32) *leaderState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ls := r.leaders[p]; ls != nil {
		return ls
	}
	if r.leaders == nil {
		r.leaders = map[*partition.Partition]*leaderState{}
	}
	now := time.Now()
	ls := &leaderState{p: p, followers: map[int32]*followerProgress{}, cap: math.MaxInt64}
	ls.floor = max(p.HighWatermark(), 0)
	for _, id := range replicas[1:] {
		ls.followers[id] = &followerProgress{fetched: -1, caughtUp: now, lastFetch: now, endAtLastFet: -1}
		ls.isr = append(ls.isr, id)
	}
	ls.setCapLocked()
	r.leaders[p] = ls
	return ls
}

// forget drops p's state (its topic was deleted).
func (r *replication) forget(p *partition.Partition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leaders, p)
}

// inSync returns how many replicas are in sync, the leader included.
func (ls *leaderState) inSync() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return 1 + len(ls.isr)
}

// setCapLocked recomputes the high watermark cap from the in-sync
// followers and sets it on the partition; it reports whether it moved.
// Caller holds ls.mu.
func (ls *leaderState) setCapLocked() bool {
	c := int64(math.MaxInt64)
	for _, id := range ls.isr {
		c = min(c, ls.followers[id].fetched)
	}
	if c != math.MaxInt64 {
		c = max(c, ls.floor)
	}
	if c == ls.cap {
		return false
	}
	if c != math.MaxInt64 && ls.cap != math.MaxInt64 && c < ls.cap {
		return false // never back
	}
	if c != math.MaxInt64 {
		// What consumers may already have seen when the set was
		// empty (the durable end) stays visible.
		ls.floor = max(ls.floor, c)
	} else {
		ls.floor = max(ls.floor, ls.p.DurableOffset())
	}
	ls.cap = c
	ls.p.SetHighWatermarkCap(c)
	return true
}

// fetched records follower id's fetch at offset; false if id is not one of
// the partition's followers.
func (r *replication) fetched(ls *leaderState, id int32, offset int64) bool {
	ls.mu.Lock()
	fp := ls.followers[id]
	if fp == nil {
		ls.mu.Unlock()
		return false
	}
	now := time.Now()
	end := ls.p.DurableOffset()
	switch {
	case offset >= end:
		fp.caughtUp = now
	case fp.endAtLastFet >= 0 && offset >= fp.endAtLastFet:
		fp.caughtUp = fp.lastFetch
	}
	fp.fetched, fp.lastFetch, fp.endAtLastFet = offset, now, end
	joined := false
	if !slices.Contains(ls.isr, id) && now.Sub(fp.caughtUp) < r.lagMax && offset >= ls.hwLocked() {
		ls.isr = append(ls.isr, id)
		slices.Sort(ls.isr)
		joined = true
	}
	moved := ls.setCapLocked()
	ls.mu.Unlock()
	if joined {
		r.log.Info("replica joined the in-sync set", "topic", ls.p.Topic(), "partition", ls.p.Index(), "replica", id, "offset", offset)
	}
	if moved || joined {
		r.moved.fire()
	}
	return true
}

// hwLocked is the partition's high watermark as consumers see it now.
// Caller holds ls.mu.
func (ls *leaderState) hwLocked() int64 {
	return min(ls.p.DurableOffset(), ls.cap)
}

// shrink removes followers that have not caught up for lagMax from every
// in-sync set.
func (r *replication) shrink(now time.Time) {
	r.mu.Lock()
	states := make([]*leaderState, 0, len(r.leaders))
	for _, ls := range r.leaders {
		states = append(states, ls)
	}
	r.mu.Unlock()
	moved := false
	for _, ls := range states {
		ls.mu.Lock()
		var out []int32
		for _, id := range ls.isr {
			if now.Sub(ls.followers[id].caughtUp) > r.lagMax {
				out = append(out, id)
			}
		}
		if len(out) == 0 {
			ls.mu.Unlock()
			continue
		}
		ls.isr = slices.DeleteFunc(ls.isr, func(id int32) bool { return slices.Contains(out, id) })
		ls.setCapLocked()
		ls.mu.Unlock()
		for _, id := range out {
			r.log.Warn("replica left the in-sync set: not caught up for longer than replica.lag.time.max.ms",
				"topic", ls.p.Topic(), "partition", ls.p.Index(), "replica", id, "lag_max", r.lagMax)
		}
		moved = true
	}
	if moved {
		r.moved.fire()
	}
}

// run shrinks the in-sync sets every quarter of lagMax until done closes.
func (r *replication) run(done <-chan struct{}) {
	t := time.NewTicker(max(r.lagMax/4, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			r.shrink(now)
		}
	}
}

// replicaFetched records a follower's fetch of partition fp.key.partition of
// ts (fetch handler); false if the fetching broker is not one of its
// followers.
func (b *Broker) replicaFetched(ts *topicState, fp *fetchPart) bool {
	i := fp.key.partition
	t := ts.meta
	if int(i) >= len(t.Replicas) || len(t.Replicas[i]) < 2 || !slices.Contains(t.Replicas[i][1:], fp.replica) {
		return false
	}
	ls := b.repl.state(ts.parts[i], t.Replicas[i])
	return b.repl.fetched(ls, fp.replica, fp.fetchOffset)
}

// replicatedState returns partition i of ts's replication state if it has
// more than one replica (this broker leads it), else nil.
func (b *Broker) replicatedState(ts *topicState, i int32) *leaderState {
	t := ts.meta
	if int(i) >= len(t.Replicas) || len(t.Replicas[i]) < 2 {
		return nil
	}
	return b.repl.state(ts.parts[i], t.Replicas[i])
}

// ReplicationStats counts the replicated partitions this broker leads and,
// among them, those with a follower out of the in-sync set (Kafka's
// UnderReplicatedPartitions), for metrics.
func (b *Broker) ReplicationStats() (led, underReplicated int) {
	r := &b.repl
	r.mu.Lock()
	states := make([]*leaderState, 0, len(r.leaders))
	for _, ls := range r.leaders {
		states = append(states, ls)
	}
	r.mu.Unlock()
	for _, ls := range states {
		ls.mu.Lock()
		if len(ls.isr) < len(ls.followers) {
			underReplicated++
		}
		ls.mu.Unlock()
	}
	return len(states), underReplicated
}
