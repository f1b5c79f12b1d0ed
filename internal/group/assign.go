package group

// Server-side assignors of the consumer group protocol (KIP-848). An
// assignor maps every partition of the topics the members subscribe to onto
// one member subscribed to its topic. Assignors are pure functions of their
// input so they can be tested alone; they run on the group's goroutine.

import (
	"sort"
)

// Assignor names (ConsumerGroupHeartbeat ServerAssignor).
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// validAssignor reports whether name is a server-side assignor we have.
func validAssignor(name string) bool { return name == AssignorUniform || name == AssignorRange }

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id     string
	topics []string // subscribed topics that exist, sorted
}

// assignment is a target assignment: member id -> partitions.
type assignment map[string]map[TP]bool

// assign runs the named assignor. parts gives each topic's partition count;
// prev is the previous target (for stickiness).
func assign(name string, members []assignMember, parts map[string]int32, prev assignment) assignment {
	sort.Slice(members, func(i, j int) bool { return members[i].id < members[j].id })
	if name == AssignorRange {
		return assignRange(members, parts)
	}
	return assignUniform(members, parts, prev)
}

// assignRange gives each topic's partitions to the members subscribed to
// it, in contiguous ranges by member id; the first (partitions % members)
// members get one more. Like the client-side range assignor.
func assignRange(members []assignMember, parts map[string]int32) assignment {
	out := assignment{}
	for _, m := range members {
		out[m.id] = map[TP]bool{}
	}
	subs := map[string][]string{}
	for _, m := range members {
		for _, t := range m.topics {
			subs[t] = append(subs[t], m.id)
		}
	}
	for t, ids := range subs {
		n := parts[t]
		per, extra := n/int32(len(ids)), n%int32(len(ids))
		p := int32(0)
		for i, id := range ids {
			k := per
			if int32(i) < extra {
				k++
			}
			for range k {
				out[id][TP{t, p}] = true
				p++
			}
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions evenly over the members
// and is sticky: a member keeps previous partitions up to its quota, and
// only the rest move. With different subscriptions, each partition goes to
// the least loaded member subscribed to its topic.
func assignUniform(members []assignMember, parts map[string]int32, prev assignment) assignment {
	out := assignment{}
	subscribed := map[string]map[string]bool{} // member -> topics
	var all []TP
	seen := map[string]bool{}
	for _, m := range members {
		out[m.id] = map[TP]bool{}
		subscribed[m.id] = map[string]bool{}
		for _, t := range m.topics {
			subscribed[m.id][t] = true
			if !seen[t] {
				seen[t] = true
				for p := range parts[t] {
					all = append(all, TP{t, p})
				}
			}
		}
	}
	if len(members) == 0 {
		return out
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Topic != all[j].Topic {
			return all[i].Topic < all[j].Topic
		}
		return all[i].Partition < all[j].Partition
	})
	// Quota: everyone gets floor(P/N); the first P%N members to fill up
	// may take one more.
	minQuota, extra := len(all)/len(members), len(all)%len(members)
	taken := map[TP]bool{}
	// Keep previous partitions up to the quota (members with most
	// previous partitions first would be fairer; id order is enough).
	for _, m := range members {
		var kept []TP
		for tp := range prev[m.id] {
			if subscribed[m.id][tp.Topic] && tp.Partition < parts[tp.Topic] && !taken[tp] {
				kept = append(kept, tp)
			}
		}
		sort.Slice(kept, func(i, j int) bool {
			if kept[i].Topic != kept[j].Topic {
				return kept[i].Topic < kept[j].Topic
			}
			return kept[i].Partition < kept[j].Partition
		})
		quota := minQuota
		if len(kept) > minQuota && extra > 0 {
			quota++
			extra--
		}
		for _, tp := range kept[:min(len(kept), quota)] {
			out[m.id][tp] = true
			taken[tp] = true
		}
	}
	// Give the rest to the least loaded eligible member (ties: id order).
	for _, tp := range all {
		if taken[tp] {
			continue
		}
		var best string
		for _, m := range members {
			if !subscribed[m.id][tp.Topic] {
				continue
			}
			if best == "" || len(out[m.id]) < len(out[best]) {
				best = m.id
			}
		}
		if best != "" {
			out[best][tp] = true
			taken[tp] = true
		}
	}
	return out
}
