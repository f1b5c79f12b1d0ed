package metadata

// Partition placement: which brokers hold each partition's replicas. A
// topic's Replicas[i] lists partition i's replicas, the preferred leader
// first, which leads it; until elections exist (issue 14, slice 4) the
// leader never changes and leader epochs stay 0.
//
// Placement is chosen by the broker that proposes a topic (or new
// partitions) from its image, as Kafka's controller does: round-robin over
// the unfenced registered brokers from a random start, the brokers ordered so
// that consecutive ones alternate racks. The state machine checks only that
// a placement is well formed; it does not require the brokers to be alive
// (a broker may be fenced between the choice and the commit, as in Kafka).
//
// Topics without placement (written by releases before it) are placed on
// the next broker to register: after an upgrade that is the broker whose
// data dir holds them. A broker alone (a quorum of one) takes every
// partition not already its own at registration: its node id changed.

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
)

// Errors of placement.
var (
	// ErrReplicationFactor refuses a replication factor above the live
	// brokers (Kafka's INVALID_REPLICATION_FACTOR).
	ErrReplicationFactor = errors.New("metadata: replication factor larger than the number of live brokers")
	// ErrReplicaAssignment refuses an explicit assignment naming unknown
	// brokers or a broker twice (Kafka's INVALID_REPLICA_ASSIGNMENT).
	ErrReplicaAssignment = errors.New("metadata: invalid replica assignment")
)

// Leader returns partition p's leader, or -1 if it has none (unplaced, or
// p out of range).
func (t *Topic) Leader(p int32) int32 {
	if p < 0 || int(p) >= len(t.Replicas) || len(t.Replicas[p]) == 0 {
		return -1
	}
	return t.Replicas[p][0]
}

// Placed reports whether every partition has replicas.
func (t *Topic) Placed() bool { return len(t.Replicas) == int(t.Partitions) }

// replicaSets interns single-broker replica lists: every partition of a
// node alone shares one []int32, so 100,000 partitions cost their slice
// headers only. Never modify a returned slice.
type replicaSets map[int32][]int32

func (rs replicaSets) of(id int32) []int32 {
	r, ok := rs[id]
	if !ok {
		r = []int32{id}
		rs[id] = r
	}
	return r
}

// intern shares single-broker replica lists of reps (in place).
func intern(reps [][]int32) {
	rs := replicaSets{}
	for i, r := range reps {
		if len(r) == 1 {
			reps[i] = rs.of(r[0])
		}
	}
}

// allOn returns n partitions placed on broker id.
func allOn(n int32, id int32) [][]int32 {
	r := []int32{id}
	out := make([][]int32, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// liveBrokers returns the unfenced brokers ordered for placement: by rack,
// racks alternating (a, b, c, a, b, c, ...), brokers of one rack by id.
// Brokers without a rack form one rack of their own ("").
func (im *Image) liveBrokers() []*Broker {
	byRack := map[string][]*Broker{}
	for _, b := range im.SortedBrokers() {
		if !b.Fenced {
			byRack[b.Rack] = append(byRack[b.Rack], b)
		}
	}
	racks := slices.Sorted(maps.Keys(byRack))
	var out []*Broker
	for i := 0; ; i++ {
		added := false
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// Place chooses replicas for n new partitions with replication factor rf
// over the live brokers: partition i's replicas are the rf brokers from
// (start+i) mod B on in the rack-alternating order, start random, so leaders
// spread evenly and each partition's replicas span racks. With no broker
// registered yet (a broker alone, before it registers) everything goes to
// self.
func (im *Image) Place(n int32, rf int16, self int32) ([][]int32, error) {
	live := im.liveBrokers()
	if len(live) == 0 {
		if rf > 1 {
			return nil, fmt.Errorf("%w: %d requested, none registered", ErrReplicationFactor, rf)
		}
		return allOn(n, self), nil
	}
	if rf < 1 || int(rf) > len(live) {
		return nil, fmt.Errorf("%w: %d requested, %d live", ErrReplicationFactor, rf, len(live))
	}
	start := rand.IntN(len(live))
	rs := replicaSets{}
	out := make([][]int32, n)
	for i := range int(n) {
		first := (start + i) % len(live)
		if rf == 1 {
			out[i] = rs.of(live[first].ID)
			continue
		}
		reps := make([]int32, rf)
		for j := range reps {
			reps[j] = live[(first+j)%len(live)].ID
		}
		out[i] = reps
	}
	return out, nil
}

func uniq(ids []int32) []int32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// CheckAssignment validates explicit replicas for a topic's partitions
// (CreateTopics' ReplicaAssignment, CreatePartitions' assignments): every
// partition has replicas, all of one length, each a registered broker,
// none twice.
func (im *Image) CheckAssignment(reps [][]int32) error {
	for i, r := range reps {
		if len(r) == 0 || len(r) != len(reps[0]) {
			return fmt.Errorf("%w: partition %d has %d replicas (every partition needs the same number, at least one)", ErrReplicaAssignment, i, len(r))
		}
		if len(uniq(r)) != len(r) {
			return fmt.Errorf("%w: partition %d names a broker twice: %v", ErrReplicaAssignment, i, r)
		}
		for _, id := range r {
			if im.Brokers[id] == nil {
				return fmt.Errorf("%w: partition %d: broker %d is not registered", ErrReplicaAssignment, i, id)
			}
		}
	}
	return nil
}

// wellFormed is the state machine's check of a placement for n partitions
// (nil: unplaced, as records written before placement).
func wellFormed(reps [][]int32, n int32) bool {
	if reps == nil {
		return true
	}
	if int32(len(reps)) != n {
		return false
	}
	for _, r := range reps {
		if len(r) == 0 {
			return false
		}
		for _, id := range r {
			if id < 0 {
				return false
			}
		}
		if len(r) > 1 && len(uniq(r)) != len(r) {
			return false
		}
	}
	return true
}

// placesOnRegister reports whether registering b changes placement:
// unplaced topics go to it; a broker alone takes every partition.
func (im *Image) placesOnRegister(b *Broker, alone bool) bool {
	for _, t := range im.Topics {
		if !t.Placed() {
			return true
		}
		if alone {
			for _, r := range t.Replicas {
				if len(r) != 1 || r[0] != b.ID {
					return true
				}
			}
		}
	}
	return false
}

// placeOnRegister applies placesOnRegister's changes in place (topic maps
// already copied).
func (im *Image) placeOnRegister(b *Broker, alone bool) {
	for name, t := range im.Topics {
		change := !t.Placed()
		if alone && !change {
			for _, r := range t.Replicas {
				if len(r) != 1 || r[0] != b.ID {
					change = true
					break
				}
			}
		}
		if !change {
			continue
		}
		nt := *t
		nt.Replicas = allOn(t.Partitions, b.ID)
		im.Topics[name] = &nt
		im.ByID[nt.ID] = &nt
	}
}
