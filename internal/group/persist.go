package group

// Group metadata persistence (classic protocol), as Kafka does it: when a
// group becomes Stable (the leader's SyncGroup stored the assignment) or
// Empty, or a static member is replaced, its state is written to
// __consumer_offsets as a GroupMetadataKey v2 / GroupMetadataValue v3 record
// (protocol type, generation, protocol, leader, and per member its ids,
// client id and host, timeouts, subscription and assignment); a deleted
// group gets a tombstone. After a restart a Stable group is restored with
// its generation, leader and assignments and every member's session timer
// restarted, so members that keep heartbeating carry on without a rebalance;
// an Empty group keeps its generation.
//
// The record is appended from the group's goroutine after the operation
// that changed the state and is not waited for: the answer to the members
// does not depend on it (an OffsetCommit's does, see offsets.go). If a crash
// loses it, the group restarts from the previous record and its members'
// heartbeats of the newer generation answer ILLEGAL_GENERATION, so they
// rejoin: a rebalance, never a wrong assignment.
//
// KIP-848 groups are persisted as Kafka's key versions 3-8
// (persist848.go).

import (
	"bytes"
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const valueGroupMetadata = 3

// loadedGroup is a group-metadata record found by replay.
type loadedGroup struct {
	seq int64
	v   *kmsg.GroupMetadataValue // nil: the group was deleted
}

func (o *offsetStore) applyGroupRecord(off int64, r *kmsg.Record) {
	var k kmsg.GroupMetadataKey
	if k.ReadFrom(r.Key) != nil {
		return
	}
	lg := &loadedGroup{seq: off}
	if r.Value != nil {
		v := new(kmsg.GroupMetadataValue)
		if v.ReadFrom(r.Value) != nil {
			o.lg.Warn("skipping undecodable group metadata", "group", k.Group, "offset", off)
			return
		}
		for i := range v.Members { // they alias the replay buffer
			v.Members[i].Subscription = bytes.Clone(v.Members[i].Subscription)
			v.Members[i].Assignment = bytes.Clone(v.Members[i].Assignment)
		}
		lg.v = v
	}
	o.mu.Lock()
	if cur := o.loaded[k.Group]; cur == nil || cur.seq < off {
		o.loaded[k.Group] = lg
	}
	o.mu.Unlock()
}

// takeLoaded returns the replayed group records and forgets them.
func (o *offsetStore) takeLoaded() map[string]*loadedGroup {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.loaded
	o.loaded = nil
	return out
}

// appendGroup appends a group's metadata record (nil value: tombstone)
// without waiting for it to be durable.
func (o *offsetStore) appendGroup(group string, value []byte) error {
	k := kmsg.GroupMetadataKey{Version: keyGroupMetadata, Group: group}
	_, _, err := o.parts[o.partitionOf(group)].Append([]kmsg.Record{{Key: k.AppendTo(nil), Value: value}})
	return err
}

// syncGroup makes everything the group's goroutine appended for it so far
// durable: it appends one more group-metadata tombstone (harmless: the
// group is gone) and waits for it, which covers every earlier record of
// the partition. DeleteGroups answers only after it, so a deleted group
// does not come back after a crash.
func (o *offsetStore) syncGroup(ctx context.Context, group string) error {
	k := kmsg.GroupMetadataKey{Version: keyGroupMetadata, Group: group}
	_, wait, err := o.parts[o.partitionOf(group)].Append([]kmsg.Record{{Key: k.AppendTo(nil)}})
	if err != nil {
		return err
	}
	return wait(ctx)
}

// persistKey summarises what a group-metadata record holds, so the group
// writes one only when it changed. It is compared after every operation
// (heartbeats included), so it is a small comparable value, not an encoding
// of the members: while Stable the member set changes only through a
// static member's replacement, which counts memberChanges (joins and leaves
// start a rebalance, which changes the state).
type persistKey struct {
	kind                           byte // 0: nothing to persist; 'S'table, 'E'mpty, 'D'ead
	generation                     int32
	protocolType, protocol, leader string
	memberChanges                  uint64
}

func (g *group) persistKey() persistKey {
	if g.cg != nil {
		return persistKey{}
	}
	k := persistKey{generation: g.generation, protocolType: g.protocolType, protocol: g.protocol, leader: g.leader}
	switch g.state {
	case stateStable:
		k.kind, k.memberChanges = 'S', g.memberChanges
	case stateEmpty:
		if g.generation == 0 && g.protocolType == "" {
			return persistKey{} // a standalone-commit group: offsets only, as Kafka
		}
		k.kind = 'E'
	case stateDead:
		return persistKey{kind: 'D'}
	default:
		return g.persisted // rebalancing: Kafka writes nothing
	}
	return k
}

// persist writes the group's record if its persisted state changed. It runs
// on the group's goroutine after every operation.
func (g *group) persist() {
	g.persistConsumer() // persist848.go
	key := g.persistKey()
	if key == g.persisted || (key.kind == 'D' && g.persisted.kind == 0) {
		return
	}
	var value []byte
	switch {
	case g.cg != nil:
		key = persistKey{} // an empty classic group turned consumer group: tombstone, as Kafka
	case key.kind != 'D':
		value = g.metadataValue().AppendTo(nil)
	}
	if err := g.c.offsets.appendGroup(g.id, value); err != nil {
		g.c.lg.Error("could not persist group metadata", "group", g.id, "err", err)
		return
	}
	g.persisted = key
}

func (g *group) metadataValue() *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = valueGroupMetadata
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.CurrentStateTimestamp = g.c.opts.Now().UnixMilli()
	if g.state != stateStable {
		return &v
	}
	v.Protocol, v.Leader = kmsg.StringPtr(g.protocol), kmsg.StringPtr(g.leader)
	for _, m := range g.sortedMembers() {
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID, mv.InstanceID = m.id, m.instanceID
		mv.ClientID, mv.ClientHost = m.clientID, m.clientHost
		mv.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		mv.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		mv.Subscription, mv.Assignment = m.metadata(g.protocol), m.assignment
		v.Members = append(v.Members, mv)
	}
	return &v
}

// restore sets a new group's state from its replayed record: Stable with its
// members (session timers start now) or Empty.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	if len(v.Members) == 0 || v.Protocol == nil {
		g.state = stateEmpty
		g.emptySince.Store(max(v.CurrentStateTimestamp, 0))
		g.persisted = g.persistKey()
		return
	}
	g.protocol = *v.Protocol
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	for i := range v.Members {
		mv := &v.Members[i]
		g.joinSeq++
		m := &member{
			id: mv.MemberID, instanceID: mv.InstanceID, clientID: mv.ClientID, clientHost: mv.ClientHost,
			sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
			protocolType:     v.ProtocolType,
			protocols:        []Protocol{{Name: g.protocol, Metadata: mv.Subscription}},
			assignment:       mv.Assignment,
			joinSeq:          g.joinSeq,
		}
		if m.sessionTimeout <= 0 {
			m.sessionTimeout = g.c.opts.MinSessionTimeout
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.touch(m)
		m.timer = time.AfterFunc(m.sessionTimeout, func() { g.post(func() { g.checkSession(m) }) })
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.sortedMembers()[0].id
	}
	g.state = stateStable
	g.emptySince.Store(-1)
	g.persisted = g.persistKey()
}
