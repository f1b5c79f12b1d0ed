package kafka

// Behavior:
//
//   - Answers committed offsets (offset, leader epoch, metadata) from
//     memory; a partition without one answers offset -1, leader epoch -1.
//     Null topics mean every committed partition of the group.
//   - require_stable (v7+): a partition with transactional offsets staged
//     by a transaction that has not completed (TxnOffsetCommit, KIP-447)
//     answers UNSTABLE_OFFSET_COMMIT and offset -1, so the consumer retries
//     instead of starting from the offset that transaction is replacing.
//     Without require_stable the last committed offset is answered.
//
// Version notes:
//   - v1 is the minimum (KIP-896). v8+ fetch several groups in one request
//     (member id and epoch of v9 are KIP-848 fields, ignored for classic
//     groups). v10 (Kafka 4.2) names topics by id: an id that names no topic
//     answers UNKNOWN_TOPIC_ID for each partition asked; asking for every
//     topic (null topics) answers the committed topics that exist, by id
//     (offsets of a deleted topic have no id to be named by and are left
//     out). Offsets are kept by topic name, so a topic deleted and created
//     again with the same name shows the old topic's offsets (Kafka 4.2
//     also stores the id with each offset and hides them).

import (
	"sort"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchedOffsets answers one group: partitions by topic, in request order
// (or sorted when all were asked for).
type fetchedPartition struct {
	partition int32
	off       group.Offset
	found     bool
	unstable  bool // require_stable and a transaction has offsets pending
}

// code and offset answers of one partition.
func (fp fetchedPartition) answer() (code int16, off int64, epoch int32, meta *string) {
	switch {
	case fp.unstable:
		return kerr.UnstableOffsetCommit.Code, -1, -1, kmsg.StringPtr("")
	case fp.found:
		return 0, fp.off.Offset, fp.off.LeaderEpoch, kmsg.StringPtr(fp.off.Metadata)
	}
	return 0, -1, -1, kmsg.StringPtr("")
}

func (b *Broker) fetchGroupOffsets(c *group.Coordinator, gid string, topics map[string][]int32, order []string, all, stable bool) ([]string, map[string][]fetchedPartition) {
	var pending map[txn.TP]bool
	if tc := b.txns.Load(); stable && tc != nil {
		pending = tc.PendingOffsets(gid)
	}
	if stable { // transactions coordinated on other brokers (group/txn_offsets.go)
		for tp := range c.PendingTxnOffsets(gid) {
			if pending == nil {
				pending = map[txn.TP]bool{}
			}
			pending[txn.TP(tp)] = true
		}
	}
	out := map[string][]fetchedPartition{}
	if all {
		offs := c.FetchOffsets(gid, nil)
		for tp, o := range offs {
			out[tp.Topic] = append(out[tp.Topic], fetchedPartition{tp.Partition, o, true, pending[txn.TP(tp)]})
		}
		order = order[:0]
		for t, ps := range out {
			order = append(order, t)
			sort.Slice(ps, func(i, j int) bool { return ps[i].partition < ps[j].partition })
		}
		sort.Strings(order)
		return order, out
	}
	var tps []group.TP
	for _, t := range order {
		for _, p := range topics[t] {
			tps = append(tps, group.TP{Topic: t, Partition: p})
		}
	}
	offs := c.FetchOffsets(gid, tps)
	for _, t := range order {
		for _, p := range topics[t] {
			o, ok := offs[group.TP{Topic: t, Partition: p}]
			out[t] = append(out[t], fetchedPartition{p, o, ok, pending[txn.TP{Topic: t, Partition: p}]})
		}
	}
	return order, out
}

// askedTopic is one topic of an OffsetFetch group: its name (unknown: an
// id that names no topic), id and partitions.
type askedTopic struct {
	name  string
	id    [16]byte
	known bool
	parts []int32
}

// offsetFetchTopics answers one group's topics, by id if byID (v10+): the
// request's topics merged by name in request order, or every committed
// topic when the request's topics are null.
func (b *Broker) offsetFetchTopics(c *group.Coordinator, rg kmsg.OffsetFetchRequestGroup, byID, stable bool) []kmsg.OffsetFetchResponseGroupTopic {
	var asked []*askedTopic
	seen := map[string]*askedTopic{}
	topics, order := map[string][]int32{}, []string{}
	for _, t := range rg.Topics {
		at := &askedTopic{name: t.Topic, id: t.TopicID, known: true}
		key := t.Topic
		if byID {
			at.name, at.known = b.topicName(t.TopicID)
			key = string(t.TopicID[:])
		}
		if prev := seen[key]; prev != nil {
			at = prev
		} else {
			seen[key] = at
			asked = append(asked, at)
			if at.known {
				order = append(order, at.name)
			}
		}
		at.parts = append(at.parts, t.Partitions...)
		if at.known {
			topics[at.name] = at.parts
		}
	}
	order, got := b.fetchGroupOffsets(c, rg.Group, topics, order, rg.Topics == nil, stable)
	if rg.Topics == nil {
		im := b.meta.Image()
		for _, name := range order {
			at := &askedTopic{name: name, known: true}
			if t, ok := im.Topics[name]; ok {
				at.id = t.ID
			} else if byID {
				continue // a deleted topic's offsets: no id to name them by
			}
			asked = append(asked, at)
		}
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	for _, at := range asked {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic, st.TopicID = at.name, at.id
		if !at.known {
			for _, p := range at.parts {
				sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				sp.Partition, sp.ErrorCode, sp.Offset, sp.LeaderEpoch = p, kerr.UnknownTopicID.Code, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
		}
		for _, fp := range got[at.name] {
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			sp.Partition = fp.partition
			sp.ErrorCode, sp.Offset, sp.LeaderEpoch, sp.Metadata = fp.answer()
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

func handleOffsetFetch(b *Broker, r *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error) {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	c := b.groups.Load()
	groups := r.Groups
	if r.Version < 8 { // the one-group form is one group of the v8 form
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = r.Group
		if r.Topics != nil {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
		for _, t := range r.Topics {
			rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		groups = []kmsg.OffsetFetchRequestGroup{rg}
	}
	for _, rg := range groups {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = rg.Group
		if c == nil {
			sg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		if sg.ErrorCode = b.notCoordinator(rg.Group); sg.ErrorCode != 0 {
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		sg.Topics = b.offsetFetchTopics(c, rg, r.Version >= offsetsTopicIDVersion, r.RequireStable)
		resp.Groups = append(resp.Groups, sg)
	}
	if r.Version < 8 {
		sg := resp.Groups[0]
		resp.ErrorCode = sg.ErrorCode
		for _, st := range sg.Topics {
			rt := kmsg.OffsetFetchResponseTopic{Topic: st.Topic}
			for _, sp := range st.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: sp.Partition, Offset: sp.Offset, LeaderEpoch: sp.LeaderEpoch, Metadata: sp.Metadata, ErrorCode: sp.ErrorCode})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		resp.Groups = nil
	}
	return resp, nil
}
