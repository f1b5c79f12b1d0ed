package group

// Consumer-group (KIP-848) persistence, as Kafka does it: the group's state
// is a set of records of __consumer_offsets (records848.go), one key per
// fact, the last record of a key winning (so compaction keeps the state):
//
//	3 ConsumerGroupMetadata                 group epoch
//	4 ConsumerGroupPartitionMetadata        subscribed topics and partition
//	                                        counts (Kafka 4.0 writes it;
//	                                        4.1 replaced it with a hash)
//	5 ConsumerGroupMemberMetadata           per member: ids, client,
//	                                        subscription, rebalance timeout,
//	                                        assignor
//	6 ConsumerGroupTargetAssignmentMetadata assignment epoch
//	7 ConsumerGroupTargetAssignmentMember   per member: target partitions
//	8 ConsumerGroupCurrentMemberAssignment  per member: member epoch,
//	                                        previous epoch, state, assigned
//	                                        and pending-revocation partitions
//
// Partitions are named by topic id. A member leaving writes tombstones for
// its 8, 7 and 5 records; a deleted group (or one turning classic) also
// tombstones 6, 4 and 3. An emptied group keeps its epoch, as in Kafka.
//
// As for classic groups (persist.go), the group's goroutine appends after
// each operation the records whose summary changed, in one batch and
// without waiting for durability. Only members the operation touched (and
// every target after a new target assignment) are compared, so a heartbeat
// costs its own member's partitions, not the group's. If a crash loses the
// last records, the group restarts from an earlier state: members whose
// newer epoch was lost are fenced (FENCED_MEMBER_EPOCH) and rejoin, and a
// member told of a partition it is not known to own is told again without
// it. Each prefix of the log is a state the group went through, so the
// owners map rebuilt at restore still gives a partition at most one member.
//
// At Open the replayed records of a group with a live record 3 restore it:
// group and assignment epochs, target assignment, and each member with its
// epochs and partitions, session timers starting then. Topic ids are
// resolved with Options.Topics. A restored state that does not hang
// together (a member without its assignment record, a target of a member
// that is gone, no assignment epoch) gets a new group epoch, hence a new
// target assignment, rather than being trusted.

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// loadedCGroup is what replay found of one consumer group: the last value
// of each of its record keys.
type loadedCGroup struct {
	seq         int64 // offset of the last live epoch record
	live        bool  // a record 3 is live
	hasTopics   bool  // a record 4 is live
	epoch       int32
	assignEpoch int32 // -1: none
	topics      []cgTopicMetadata
	members     map[string]*cgMemberValue
	targets     map[string][]cgTopicPartitions
	current     map[string]*cgCurrentValue
}

func (o *offsetStore) applyCGRecord(off int64, r *kmsg.Record) {
	k, err := decodeCGKey(r.Key)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	lc := o.loadedCG[k.Group]
	if lc == nil {
		if r.Value == nil {
			return
		}
		lc = &loadedCGroup{assignEpoch: -1, members: map[string]*cgMemberValue{},
			targets: map[string][]cgTopicPartitions{}, current: map[string]*cgCurrentValue{}}
		o.loadedCG[k.Group] = lc
	}
	bad := func(err error) {
		o.lg.Warn("skipping undecodable consumer group record", "group", k.Group, "type", k.Type, "offset", off, "err", err)
	}
	switch k.Type {
	case keyCGMetadata:
		if r.Value == nil {
			lc.live = false
			return
		}
		e, err := decodeCGEpoch(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.live, lc.epoch, lc.seq = true, e, off
	case keyCGPartitionMetadata:
		if r.Value == nil {
			lc.topics, lc.hasTopics = nil, false
			return
		}
		ts, err := decodeCGPartitionMetadata(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.topics, lc.hasTopics = ts, true
	case keyCGMember:
		if r.Value == nil {
			delete(lc.members, k.Member)
			return
		}
		v, err := decodeCGMember(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.members[k.Member] = v
	case keyCGTargetMetadata:
		if r.Value == nil {
			lc.assignEpoch = -1
			return
		}
		e, err := decodeCGEpoch(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.assignEpoch = e
	case keyCGTargetMember:
		if r.Value == nil {
			delete(lc.targets, k.Member)
			return
		}
		tps, err := decodeCGTargetMember(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.targets[k.Member] = tps
	case keyCGCurrent:
		if r.Value == nil {
			delete(lc.current, k.Member)
			return
		}
		v, err := decodeCGCurrent(r.Value)
		if err != nil {
			bad(err)
			return
		}
		lc.current[k.Member] = v
	}
}

// takeLoadedCG returns the replayed consumer groups and forgets them.
func (o *offsetStore) takeLoadedCG() map[string]*loadedCGroup {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.loadedCG
	o.loadedCG = nil
	return out
}

// cgSaved is what the group's records in the log say, as summaries.
type cgSaved struct {
	epoch, assignEpoch int32 // -1: no live record
	fp                 *string
	members, targets   map[string]string
	current            map[string]string
}

func newCGSaved() *cgSaved {
	return &cgSaved{epoch: -1, assignEpoch: -1, members: map[string]string{}, targets: map[string]string{}, current: map[string]string{}}
}

func cgRec(typ int16, group, member string, value []byte) kmsg.Record {
	return kmsg.Record{Key: cgKey{Type: typ, Group: group, Member: member}.encode(), Value: value}
}

func tpsKey(tps map[TP]bool) string {
	out := make([]string, 0, len(tps))
	for tp := range tps {
		out = append(out, tp.Topic+":"+strconv.Itoa(int(tp.Partition)))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func strp(s *string) string {
	if s == nil {
		return "\x01"
	}
	return *s
}

func memberKey(m *cmember) string {
	return strings.Join([]string{strp(m.instanceID), strp(m.rackID), m.clientID, m.clientHost,
		strings.Join(m.subscribed, ","), strp(m.regex), m.rebalanceTimeout.String(), m.assignor}, "\x00")
}

func (g *group) memberState(m *cmember) int8 {
	if len(m.revoking) > 0 {
		return memberStateUnrevokedPartitions
	}
	if m.epoch == g.cg.assignEpoch {
		for tp := range g.cg.target[m.id] {
			if !m.assigned[tp] {
				return memberStateUnreleasedPartitions
			}
		}
	}
	return memberStateStable
}

// recordEpochs is the (member epoch, previous epoch) written for m: a
// static member that left temporarily is -2, as in Kafka, and its previous
// epoch is the epoch it had.
func recordEpochs(m *cmember) (int32, int32) {
	if m.staticLeft {
		return -2, m.epoch
	}
	return m.epoch, m.prevEpoch
}

func (g *group) currentKey(m *cmember) string {
	e, p := recordEpochs(m)
	return strconv.Itoa(int(e)) + "/" + strconv.Itoa(int(p)) + "/" + strconv.Itoa(int(g.memberState(m))) +
		"/" + tpsKey(m.assigned) + "/" + tpsKey(m.revoking)
}

// byTopicID converts partitions to the records' form; topics the view does
// not know (deleted) are left out.
func (g *group) byTopicID(tps map[TP]bool) []cgTopicPartitions {
	by := map[string][]int32{}
	for tp := range tps {
		by[tp.Topic] = append(by[tp.Topic], tp.Partition)
	}
	names := make([]string, 0, len(by))
	for t := range by {
		names = append(names, t)
	}
	sort.Strings(names)
	out := make([]cgTopicPartitions, 0, len(names))
	for _, t := range names {
		if g.cg.view == nil {
			break
		}
		meta, ok := g.cg.view.Topic(t)
		if !ok {
			continue
		}
		ps := by[t]
		slices.Sort(ps)
		out = append(out, cgTopicPartitions{TopicID: meta.ID, Partitions: ps})
	}
	return out
}

func (g *group) memberValue(m *cmember) []byte {
	rt := int32(-1)
	if m.rebalanceTimeout > 0 {
		rt = int32(m.rebalanceTimeout.Milliseconds())
	}
	assignor := m.assignor
	return encodeCGMember(&cgMemberValue{
		InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
		SubscribedTopicNames: m.subscribed, SubscribedTopicRegex: m.regex, RebalanceTimeoutMs: rt, ServerAssignor: &assignor,
	})
}

func (g *group) currentValue(m *cmember) []byte {
	e, p := recordEpochs(m)
	return encodeCGCurrent(&cgCurrentValue{MemberEpoch: e, PreviousMemberEpoch: p, State: g.memberState(m),
		Assigned: g.byTopicID(m.assigned), PendingRevocation: g.byTopicID(m.revoking)})
}

// partitionMetadata is record 4's value for the fingerprint fp
// ("topic:partitions,..."), with ids from the group's view.
func (g *group) partitionMetadata(fp string) []byte {
	var ts []cgTopicMetadata
	if fp != "" {
		for _, e := range strings.Split(fp, ",") {
			i := strings.LastIndexByte(e, ':')
			n, _ := strconv.Atoi(e[i+1:])
			t := cgTopicMetadata{TopicName: e[:i], NumPartitions: int32(n)}
			if g.cg.view != nil {
				if meta, ok := g.cg.view.Topic(t.TopicName); ok {
					t.TopicID = meta.ID
				}
			}
			ts = append(ts, t)
		}
	}
	return encodeCGPartitionMetadata(ts)
}

// fingerprintOf is the fingerprint record 4 describes.
func fingerprintOf(ts []cgTopicMetadata) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.TopicName + ":" + strconv.Itoa(int(t.NumPartitions))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// touch marks member id for persist to compare.
func (cg *cgroup) touch(id string) {
	if cg.touched == nil {
		cg.touched = map[string]bool{}
	}
	cg.touched[id] = true
}

// deleteRecords are the tombstones of everything saved, in Kafka's order.
func (g *group) deleteRecords(s *cgSaved) []kmsg.Record {
	var recs []kmsg.Record
	for _, id := range sortedKeys(s.current) {
		recs = append(recs, cgRec(keyCGCurrent, g.id, id, nil))
	}
	for _, id := range sortedKeys(s.targets) {
		recs = append(recs, cgRec(keyCGTargetMember, g.id, id, nil))
	}
	recs = append(recs, cgRec(keyCGTargetMetadata, g.id, "", nil))
	for _, id := range sortedKeys(s.members) {
		recs = append(recs, cgRec(keyCGMember, g.id, id, nil))
	}
	recs = append(recs, cgRec(keyCGPartitionMetadata, g.id, "", nil), cgRec(keyCGMetadata, g.id, "", nil))
	return recs
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// persistConsumer appends the consumer-group records whose summary changed
// (see the file comment). It runs on the group's goroutine after every
// operation.
func (g *group) persistConsumer() {
	cg := g.cg
	if cg == nil || g.state == stateDead {
		if g.csaved != nil { // deleted, or turned classic
			if g.appendCG(g.deleteRecords(g.csaved)) {
				g.csaved = nil
			}
		}
		return
	}
	s := g.csaved
	if s == nil {
		if cg.epoch == 0 {
			return // no member ever joined (a rejected first heartbeat): nothing to keep
		}
		s = newCGSaved()
	}
	var tombs, metas, targets, currents []kmsg.Record
	var commit []func()
	ids := make([]string, 0, len(cg.touched))
	for id := range cg.touched {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := cg.members[id]
		if m == nil {
			if _, ok := s.current[id]; ok {
				tombs = append(tombs, cgRec(keyCGCurrent, g.id, id, nil))
			}
			if _, ok := s.targets[id]; ok {
				tombs = append(tombs, cgRec(keyCGTargetMember, g.id, id, nil))
			}
			if _, ok := s.members[id]; ok {
				tombs = append(tombs, cgRec(keyCGMember, g.id, id, nil))
			}
			commit = append(commit, func() { delete(s.current, id); delete(s.targets, id); delete(s.members, id) })
			continue
		}
		if k := memberKey(m); k != s.members[id] {
			metas = append(metas, cgRec(keyCGMember, g.id, id, g.memberValue(m)))
			commit = append(commit, func() { s.members[id] = k })
		}
		if k := g.currentKey(m); k != s.current[id] || !hasKey(s.current, id) {
			currents = append(currents, cgRec(keyCGCurrent, g.id, id, g.currentValue(m)))
			commit = append(commit, func() { s.current[id] = k })
		}
	}
	if cg.targetChanged {
		tids := make([]string, 0, len(cg.target))
		for id := range cg.target {
			tids = append(tids, id)
		}
		sort.Strings(tids)
		for _, id := range tids {
			if cg.members[id] == nil {
				continue
			}
			if k := tpsKey(cg.target[id]); k != s.targets[id] || !hasKey(s.targets, id) {
				targets = append(targets, cgRec(keyCGTargetMember, g.id, id, encodeCGTargetMember(g.byTopicID(cg.target[id]))))
				commit = append(commit, func() { s.targets[id] = k })
			}
		}
		for _, id := range sortedKeys(s.targets) {
			if _, ok := cg.target[id]; !ok && cg.members[id] != nil {
				tombs = append(tombs, cgRec(keyCGTargetMember, g.id, id, nil))
				commit = append(commit, func() { delete(s.targets, id) })
			}
		}
	}
	recs := tombs
	recs = append(recs, metas...)
	if s.fp == nil || *s.fp != cg.fingerprint {
		fp := cg.fingerprint
		recs = append(recs, cgRec(keyCGPartitionMetadata, g.id, "", g.partitionMetadata(fp)))
		commit = append(commit, func() { s.fp = &fp })
	}
	if cg.epoch != s.epoch {
		e := cg.epoch
		recs = append(recs, cgRec(keyCGMetadata, g.id, "", encodeCGEpoch(e)))
		commit = append(commit, func() { s.epoch = e })
	}
	recs = append(recs, targets...)
	if cg.assignEpoch != s.assignEpoch {
		e := cg.assignEpoch
		recs = append(recs, cgRec(keyCGTargetMetadata, g.id, "", encodeCGEpoch(e)))
		commit = append(commit, func() { s.assignEpoch = e })
	}
	recs = append(recs, currents...)
	if len(recs) > 0 && !g.appendCG(recs) {
		return // touched stays set: the next operation tries again
	}
	for _, f := range commit {
		f()
	}
	g.csaved = s
	cg.touched, cg.targetChanged = nil, false
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// appendCG appends records to the group's partition without waiting.
func (g *group) appendCG(recs []kmsg.Record) bool {
	_, wait, err := g.c.offsets.parts[g.c.offsets.partitionOf(g.id)].Append(recs)
	if err != nil {
		g.c.lg.Error("could not persist consumer group", "group", g.id, "err", err)
		return false
	}
	if wait != nil {
		g.cgWaits = append(g.cgWaits, wait)
	}
	return true
}

// restoreConsumer sets a new group's consumer-protocol state from its
// replayed records (see the file comment).
func (g *group) restoreConsumer(lc *loadedCGroup, view TopicView) {
	cg := newCGroup()
	g.cg, g.protocolType = cg, "consumer"
	cg.view = view
	cg.epoch, cg.assignEpoch = lc.epoch, lc.assignEpoch
	cg.fingerprint = fingerprintOf(lc.topics)
	resolve := func(tps []cgTopicPartitions) map[TP]bool {
		out := map[TP]bool{}
		for _, t := range tps {
			meta, ok := view.TopicByID(t.TopicID)
			if !ok {
				continue
			}
			for _, p := range t.Partitions {
				out[TP{meta.Name, p}] = true
			}
		}
		return out
	}
	consistent := lc.assignEpoch >= 0 && lc.assignEpoch <= lc.epoch
	ids := make([]string, 0, len(lc.members))
	for id := range lc.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mv := lc.members[id]
		m := &cmember{id: id, instanceID: mv.InstanceID, rackID: mv.RackID, clientID: mv.ClientID, clientHost: mv.ClientHost,
			regex: mv.SubscribedTopicRegex, assignor: AssignorUniform, assigned: map[TP]bool{}, revoking: map[TP]bool{}}
		if mv.RebalanceTimeoutMs > 0 {
			m.rebalanceTimeout = time.Duration(mv.RebalanceTimeoutMs) * time.Millisecond
		}
		if mv.SubscribedTopicNames != nil {
			m.subscribed = slices.Sorted(slices.Values(mv.SubscribedTopicNames))
		}
		if m.regex != nil && *m.regex != "" {
			re, err := regexp.Compile("^(?:" + *m.regex + ")$")
			if err != nil {
				g.c.lg.Warn("restored member has an invalid regex", "group", g.id, "member", id, "err", err)
				consistent = false
			}
			m.re = re
		}
		if mv.ServerAssignor != nil && validAssignor(*mv.ServerAssignor) {
			m.assignor = *mv.ServerAssignor
		}
		if cur := lc.current[id]; cur != nil {
			m.epoch, m.prevEpoch = cur.MemberEpoch, cur.PreviousMemberEpoch
			if m.epoch == -2 && m.instanceID != nil {
				m.staticLeft, m.epoch = true, cur.PreviousMemberEpoch
			}
			m.assigned, m.revoking = resolve(cur.Assigned), resolve(cur.PendingRevocation)
		} else {
			consistent = false
		}
		if m.epoch < 0 || m.epoch > cg.epoch {
			m.epoch, m.prevEpoch, m.staticLeft = 0, 0, false
			m.assigned, m.revoking = map[TP]bool{}, map[TP]bool{}
			consistent = false
		}
		cg.members[id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = id
		}
		if t, ok := lc.targets[id]; ok {
			cg.target[id] = resolve(t)
		} else {
			consistent = false
		}
	}
	for id := range lc.targets {
		if cg.members[id] == nil {
			consistent = false
		}
	}
	cg.assignor = chooseAssignor(cg.members)
	// What the records say, before any repair below.
	s := newCGSaved()
	s.epoch, s.assignEpoch = lc.epoch, lc.assignEpoch
	if lc.hasTopics {
		fp := cg.fingerprint
		s.fp = &fp
	} else {
		// Kafka 4.1 writes a hash instead of record 4: take the topics as
		// they are now rather than rebalance.
		cg.fingerprint = g.fingerprint()
	}
	for id, m := range cg.members {
		s.members[id] = memberKey(m)
		if lc.current[id] != nil {
			s.current[id] = g.currentKey(m)
		}
	}
	for id := range lc.targets {
		if t, ok := cg.target[id]; ok {
			s.targets[id] = tpsKey(t)
		} else {
			s.targets[id] = "\x01" // a target of a member that is gone: tombstoned below
		}
	}
	g.csaved = s
	// The one-owner invariant: a partition claimed twice (not from a log
	// this broker wrote) stays with the first member by id.
	for _, id := range ids {
		m := cg.members[id]
		for _, set := range []map[TP]bool{m.assigned, m.revoking} {
			for tp := range set {
				if owner, busy := cg.owners[tp]; busy && owner != id {
					g.c.lg.Warn("restored partition claimed by two members", "group", g.id, "partition", tp, "kept", owner, "dropped", id)
					delete(set, tp)
					m.dirty = true
					cg.touch(id)
					continue
				}
				cg.owners[tp] = id
			}
		}
		if len(m.revoking) > 0 {
			m.revokeDeadline = time.Now().Add(m.rebalanceTimeout)
		}
		g.armConsumerTimer(m)
	}
	for id := range s.targets {
		if cg.members[id] == nil {
			cg.touch(id)
		}
	}
	if len(cg.members) > 0 {
		g.state = stateStable
		g.emptySince.Store(-1)
	} else {
		g.state = stateEmpty
		g.emptySince.Store(0)
	}
	if !consistent && len(cg.members) > 0 {
		g.c.lg.Warn("restored consumer group state is incomplete: new target assignment", "group", g.id)
		for id := range cg.members {
			cg.touch(id)
		}
		g.bumpEpoch()
		g.computeTarget()
	}
}

// chooseAssignor is the assignor most members name (ties: by name).
func chooseAssignor(members map[string]*cmember) string {
	votes := map[string]int{}
	for _, m := range members {
		votes[m.assignor]++
	}
	best := AssignorUniform
	for a, n := range votes {
		if n > votes[best] || (n == votes[best] && a < best) {
			best = a
		}
	}
	return best
}
