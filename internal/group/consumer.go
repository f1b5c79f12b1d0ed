package group

// The consumer group protocol (KIP-848): members send ConsumerGroupHeartbeat
// only; the coordinator computes the assignment (assign.go). State, owned by
// the group's goroutine like a classic group's:
//
//   - group epoch: bumped when a member joins or leaves, changes its
//     subscription or assignor, or a subscribed topic changes its partition
//     count. Each bump recomputes the target assignment, whose epoch
//     (assignment epoch) is then the group epoch.
//   - per member: its epoch, the partitions it may own (assigned) and those
//     it was asked to give up (revoking). A member behind the assignment
//     epoch first revokes what its target no longer holds; once its
//     heartbeat's owned partitions show them released, its epoch advances to
//     the assignment epoch. Partitions of its target are handed to it only
//     when no other member owns or is still revoking them, so no partition
//     is ever owned by two members at once.
//
// Errors as Kafka answers them: UNKNOWN_MEMBER_ID for a member the group
// does not know, FENCED_MEMBER_EPOCH for an epoch other than the member's
// (or its previous one when the owned partitions show a lost response),
// UNRELEASED_INSTANCE_ID for a static instance still held by another live
// member, UNSUPPORTED_ASSIGNOR, INVALID_REQUEST for malformed joins.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicMeta is what the consumer protocol needs to know of a topic.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// TopicView resolves topics (a metadata snapshot).
type TopicView interface {
	Topic(name string) (TopicMeta, bool)
	TopicByID(id [16]byte) (TopicMeta, bool)
	Names() []string
}

// OwnedTopic is one topic's partitions as a heartbeat reports them.
type OwnedTopic struct {
	ID         [16]byte
	Partitions []int32
}

// ConsumerHeartbeat is a ConsumerGroupHeartbeat request.
type ConsumerHeartbeat struct {
	Group, MemberID      string
	Epoch                int32
	InstanceID, RackID   *string
	RebalanceTimeout     time.Duration // < 0: unchanged
	Subscribed           []string      // nil: unchanged
	Regex                *string       // nil: unchanged
	Assignor             *string       // nil: unchanged
	Owned                []OwnedTopic  // nil: unchanged
	ClientID, ClientHost string
	// GenerateMemberID: v0 lets the coordinator pick the member id; from v1
	// the client generates it and an empty id is INVALID_REQUEST.
	GenerateMemberID bool
	Topics           TopicView
}

// TopicAssignment is one topic of an assignment.
type TopicAssignment struct {
	ID         [16]byte
	Topic      string
	Partitions []int32
}

// ConsumerHeartbeatResult answers a ConsumerGroupHeartbeat.
type ConsumerHeartbeatResult struct {
	Err        int16
	ErrMsg     string
	MemberID   string
	Epoch      int32
	IntervalMs int32
	Assignment []TopicAssignment // nil: not sent (unchanged)
	HasAssign  bool
}

type cmember struct {
	id                   string
	instanceID, rackID   *string
	clientID, clientHost string
	epoch, prevEpoch     int32
	rebalanceTimeout     time.Duration
	subscribed           []string
	regex                *string
	re                   *regexp.Regexp
	assignor             string

	assigned map[TP]bool // partitions it may own
	revoking map[TP]bool // partitions it must release
	dirty    bool        // assigned changed since the last answer

	deadline       time.Time // session expiry
	revokeDeadline time.Time // zero unless revoking
	staticLeft     bool      // static member left temporarily (epoch -2)
	timer          *time.Timer
}

// cgroup is the consumer-protocol state of a group.
type cgroup struct {
	epoch, assignEpoch int32
	assignor           string
	members            map[string]*cmember
	static             map[string]string // instance id -> member id
	target             assignment
	owners             map[TP]string // member owning or revoking each partition
	fingerprint        string        // subscribed topics' partition counts
	view               TopicView     // the latest metadata seen
	// touched: members whose records persistConsumer must compare;
	// targetChanged: the target assignment was recomputed (persist848.go).
	touched       map[string]bool
	targetChanged bool
}

func newCGroup() *cgroup {
	return &cgroup{members: map[string]*cmember{}, static: map[string]string{}, target: assignment{}, owners: map[TP]string{}}
}

// consumerState is the group state Kafka reports for consumer groups.
func (cg *cgroup) state() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.assignEpoch < cg.epoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignEpoch || len(m.revoking) > 0 || len(m.assigned) != len(cg.target[m.id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (g *group) consumerHeartbeat(req *ConsumerHeartbeat) ConsumerHeartbeatResult {
	fail := func(code int16, msg string) ConsumerHeartbeatResult {
		return ConsumerHeartbeatResult{Err: code, ErrMsg: msg, MemberID: req.MemberID, Epoch: req.Epoch}
	}
	if g.state == stateDead {
		return fail(kerr.CoordinatorNotAvailable.Code, "")
	}
	if g.cg == nil {
		if g.state != stateEmpty || len(g.members) > 0 {
			return fail(kerr.GroupIDNotFound.Code, "group "+g.id+" is not a consumer group")
		}
		g.cg = newCGroup()
		g.protocolType = "consumer"
	}
	cg := g.cg
	if req.Topics != nil {
		cg.view = req.Topics
	}
	switch {
	case req.Epoch == -1 || req.Epoch == -2:
		return g.consumerLeave(req)
	case req.Epoch < -2:
		return fail(kerr.InvalidRequest.Code, "member epoch must be >= -2")
	case req.Epoch == 0:
		if code, msg := validateJoin(req); code != 0 {
			return fail(code, msg)
		}
	}
	if req.Assignor != nil && *req.Assignor != "" && !validAssignor(*req.Assignor) {
		return fail(kerr.UnsupportedAssignor.Code, "assignor "+*req.Assignor+" is not supported (uniform, range)")
	}
	var m *cmember
	bump := false // one group epoch bump per heartbeat, whatever changed
	if req.Epoch == 0 {
		var code int16
		if m, bump, code = g.consumerJoin(req); code != 0 {
			return fail(code, "")
		}
	} else {
		m = cg.members[req.MemberID]
		switch {
		case m == nil:
			return fail(kerr.UnknownMemberID.Code, "")
		case req.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *req.InstanceID):
			return fail(kerr.FencedInstanceID.Code, "")
		case req.Epoch != m.epoch && !(req.Epoch == m.prevEpoch && req.Owned != nil && g.ownedSubset(m, req.Owned)):
			return fail(kerr.FencedMemberEpoch.Code, fmt.Sprintf("member epoch %d, expected %d", req.Epoch, m.epoch))
		}
	}
	if g.updateMember(m, req) {
		bump = true
	}
	if fp := g.fingerprint(); fp != cg.fingerprint {
		cg.fingerprint = fp
		bump = true
	}
	if bump {
		g.bumpEpoch()
	}
	if cg.assignEpoch < cg.epoch {
		g.computeTarget()
	}
	if req.Owned != nil {
		g.released(m, req.Owned)
	}
	g.reconcile(m)
	cg.touch(m.id)
	m.deadline = time.Now().Add(g.c.opts.ConsumerSessionTimeout)
	res := ConsumerHeartbeatResult{MemberID: m.id, Epoch: m.epoch, IntervalMs: int32(g.c.opts.ConsumerHeartbeatInterval.Milliseconds())}
	if m.dirty || req.Epoch == 0 || (req.Owned != nil && !g.ownedEquals(m, req.Owned)) {
		res.HasAssign = true
		res.Assignment = g.assignmentOf(m.assigned)
		m.dirty = false
	}
	return res
}

func validateJoin(req *ConsumerHeartbeat) (int16, string) {
	switch {
	case req.MemberID == "" && !req.GenerateMemberID:
		return kerr.InvalidRequest.Code, "member id must be set when joining"
	case req.Subscribed == nil && req.Regex == nil:
		return kerr.InvalidRequest.Code, "subscribed topic names or regex must be set when joining"
	case req.RebalanceTimeout < 0:
		return kerr.InvalidRequest.Code, "rebalance timeout must be set when joining"
	case len(req.Owned) > 0:
		return kerr.InvalidRequest.Code, "owned partitions must be empty when joining"
	}
	if req.Regex != nil && *req.Regex != "" {
		if _, err := regexp.Compile("^(?:" + *req.Regex + ")$"); err != nil {
			return kerr.InvalidRegularExpression.Code, err.Error()
		}
	}
	return 0, ""
}

// consumerJoin handles a join (epoch 0): a new member, a member rejoining
// after a fence (it owns nothing now), or a static member replacing its
// previous incarnation (which keeps its assignment, no rebalance).
// It reports whether a member was added.
func (g *group) consumerJoin(req *ConsumerHeartbeat) (*cmember, bool, int16) {
	cg := g.cg
	if req.MemberID == "" {
		req.MemberID = g.c.newMemberID(req.ClientID)
	}
	if req.InstanceID != nil {
		if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != req.MemberID {
			old := cg.members[oldID]
			if !old.staticLeft {
				return nil, false, kerr.UnreleasedInstanceID.Code
			}
			old.timer.Stop()
			delete(cg.members, oldID)
			for tp, id := range cg.owners {
				if id == oldID {
					cg.owners[tp] = req.MemberID
				}
			}
			if t, ok := cg.target[oldID]; ok {
				delete(cg.target, oldID)
				cg.target[req.MemberID] = t
			}
			cg.touch(oldID)
			cg.touch(req.MemberID)
			cg.targetChanged = true
			old.id, old.staticLeft, old.dirty = req.MemberID, false, true
			cg.members[old.id] = old
			cg.static[*req.InstanceID] = old.id
			g.armConsumerTimer(old)
			return old, false, 0
		}
	}
	if m := cg.members[req.MemberID]; m != nil {
		// Rejoin after a fence: whatever it owned is gone.
		g.releaseAll(m)
		m.epoch, m.prevEpoch = 0, 0
		return m, false, 0
	}
	m := &cmember{id: req.MemberID, instanceID: req.InstanceID, assigned: map[TP]bool{}, revoking: map[TP]bool{}, assignor: AssignorUniform}
	cg.members[m.id] = m
	if req.InstanceID != nil {
		cg.static[*req.InstanceID] = m.id
	}
	g.state = stateStable
	g.emptySince.Store(-1)
	g.armConsumerTimer(m)
	return m, true, 0
}

// updateMember applies the request's non-null fields; true if the
// subscription or assignor changed.
func (g *group) updateMember(m *cmember, req *ConsumerHeartbeat) bool {
	changed := false
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeout >= 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	if req.Subscribed != nil {
		s := append([]string(nil), req.Subscribed...)
		sort.Strings(s)
		if strings.Join(s, "\x00") != strings.Join(m.subscribed, "\x00") {
			m.subscribed, changed = s, true
		}
	}
	if req.Regex != nil && (m.regex == nil || *m.regex != *req.Regex) {
		m.regex, m.re, changed = req.Regex, nil, true
		if *req.Regex != "" {
			m.re = regexp.MustCompile("^(?:" + *req.Regex + ")$") // validated on join
		}
	}
	if req.Assignor != nil {
		a := *req.Assignor
		if a == "" {
			a = AssignorUniform
		}
		if a != m.assignor {
			m.assignor, changed = a, true
		}
	}
	return changed
}

func (g *group) bumpEpoch() { g.cg.epoch++ }

// topicsOf returns the existing topics member m subscribes to, sorted.
func (g *group) topicsOf(m *cmember) []string {
	view := g.cg.view
	if view == nil {
		return nil
	}
	set := map[string]bool{}
	for _, t := range m.subscribed {
		if _, ok := view.Topic(t); ok {
			set[t] = true
		}
	}
	if m.re != nil {
		for _, t := range view.Names() {
			if m.re.MatchString(t) {
				set[t] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// fingerprint describes the subscribed topics and their partition counts:
// a change (topic created, deleted, grown) needs a new target assignment.
func (g *group) fingerprint() string {
	set := map[string]bool{}
	for _, m := range g.cg.members {
		for _, t := range g.topicsOf(m) {
			set[t] = true
		}
	}
	ts := make([]string, 0, len(set))
	for t := range set {
		meta, _ := g.cg.view.Topic(t)
		ts = append(ts, t+":"+strconv.Itoa(int(meta.Partitions)))
	}
	sort.Strings(ts)
	return strings.Join(ts, ",")
}

// computeTarget recomputes the target assignment at the group epoch with
// the assignor most members ask for (ties: by name; default uniform).
func (g *group) computeTarget() {
	cg := g.cg
	var ms []assignMember
	parts := map[string]int32{}
	for _, m := range cg.members {
		ts := g.topicsOf(m)
		for _, t := range ts {
			meta, _ := cg.view.Topic(t)
			parts[t] = meta.Partitions
		}
		ms = append(ms, assignMember{id: m.id, topics: ts})
	}
	cg.assignor = chooseAssignor(cg.members)
	cg.target = assign(cg.assignor, ms, parts, cg.target)
	cg.assignEpoch = cg.epoch
	cg.targetChanged = true
}

func (g *group) resolveOwned(owned []OwnedTopic) map[TP]bool {
	out := map[TP]bool{}
	for _, t := range owned {
		meta, ok := TopicMeta{}, false
		if g.cg.view != nil {
			meta, ok = g.cg.view.TopicByID(t.ID)
		}
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			out[TP{meta.Name, p}] = true
		}
	}
	return out
}

func (g *group) ownedSubset(m *cmember, owned []OwnedTopic) bool {
	for tp := range g.resolveOwned(owned) {
		if !m.assigned[tp] && !m.revoking[tp] {
			return false
		}
	}
	return true
}

func (g *group) ownedEquals(m *cmember, owned []OwnedTopic) bool {
	o := g.resolveOwned(owned)
	if len(o) != len(m.assigned) {
		return false
	}
	for tp := range o {
		if !m.assigned[tp] {
			return false
		}
	}
	return true
}

// released frees the revoking partitions the member no longer reports.
func (g *group) released(m *cmember, owned []OwnedTopic) {
	o := g.resolveOwned(owned)
	for tp := range m.revoking {
		if !o[tp] {
			delete(m.revoking, tp)
			if g.cg.owners[tp] == m.id {
				delete(g.cg.owners, tp)
			}
		}
	}
}

// reconcile moves member m toward its target (see the file comment).
func (g *group) reconcile(m *cmember) {
	cg := g.cg
	target := cg.target[m.id]
	if m.epoch < cg.assignEpoch {
		for tp := range m.assigned {
			if !target[tp] {
				delete(m.assigned, tp)
				m.revoking[tp] = true
				m.dirty = true
			}
		}
		if len(m.revoking) > 0 {
			if m.revokeDeadline.IsZero() {
				m.revokeDeadline = time.Now().Add(m.rebalanceTimeout)
				if m.revokeDeadline.Before(m.deadline) {
					m.timer.Reset(m.rebalanceTimeout) // checkConsumer re-arms if early
				}
			}
			return
		}
		m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
	}
	if len(m.revoking) > 0 {
		return
	}
	m.revokeDeadline = time.Time{}
	for tp := range target {
		if m.assigned[tp] {
			continue
		}
		if _, busy := cg.owners[tp]; busy {
			continue
		}
		m.assigned[tp] = true
		cg.owners[tp] = m.id
		m.dirty = true
	}
}

func (g *group) releaseAll(m *cmember) {
	for tp := range m.assigned {
		if g.cg.owners[tp] == m.id {
			delete(g.cg.owners, tp)
		}
	}
	for tp := range m.revoking {
		if g.cg.owners[tp] == m.id {
			delete(g.cg.owners, tp)
		}
	}
	m.assigned, m.revoking, m.revokeDeadline, m.dirty = map[TP]bool{}, map[TP]bool{}, time.Time{}, true
}

func (g *group) assignmentOf(tps map[TP]bool) []TopicAssignment {
	byTopic := map[string][]int32{}
	for tp := range tps {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	out := []TopicAssignment{}
	for t, ps := range byTopic {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		ta := TopicAssignment{Topic: t, Partitions: ps}
		if g.cg.view != nil {
			if meta, ok := g.cg.view.Topic(t); ok {
				ta.ID = meta.ID
			}
		}
		out = append(out, ta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// consumerLeave handles epoch -1 (leave) and -2 (a static member leaving
// temporarily: it keeps its assignment until its session expires or its
// instance rejoins).
func (g *group) consumerLeave(req *ConsumerHeartbeat) ConsumerHeartbeatResult {
	cg := g.cg
	id := req.MemberID
	if req.InstanceID != nil {
		if sid, ok := cg.static[*req.InstanceID]; ok && (id == "" || id == sid) {
			id = sid
		}
	}
	m := cg.members[id]
	if m == nil {
		return ConsumerHeartbeatResult{Err: kerr.UnknownMemberID.Code, MemberID: req.MemberID, Epoch: req.Epoch}
	}
	if req.Epoch == -2 && m.instanceID != nil {
		m.staticLeft = true
		cg.touch(m.id)
		m.deadline = time.Now().Add(g.c.opts.ConsumerSessionTimeout)
		return ConsumerHeartbeatResult{MemberID: m.id, Epoch: -2}
	}
	g.removeConsumer(m)
	return ConsumerHeartbeatResult{MemberID: m.id, Epoch: -1}
}

// removeConsumer drops m, frees its partitions and bumps the group epoch.
func (g *group) removeConsumer(m *cmember) {
	cg := g.cg
	m.timer.Stop()
	g.releaseAll(m)
	cg.touch(m.id)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	g.bumpEpoch()
	if len(cg.members) == 0 {
		g.state = stateEmpty
		g.emptySince.Store(g.c.opts.Now().UnixMilli())
		cg.fingerprint = ""
		g.computeTarget()
		return
	}
	g.computeTarget()
}

func (g *group) armConsumerTimer(m *cmember) {
	m.deadline = time.Now().Add(g.c.opts.ConsumerSessionTimeout)
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timer = time.AfterFunc(g.c.opts.ConsumerSessionTimeout, func() { g.post(func() { g.checkConsumer(m) }) })
}

// checkConsumer expires a member whose session ended, or fences one that
// did not revoke within its rebalance timeout.
func (g *group) checkConsumer(m *cmember) {
	if g.cg == nil || g.cg.members[m.id] != m {
		return
	}
	now := time.Now()
	switch {
	case !now.Before(m.deadline):
		g.c.lg.Info("consumer group member session expired", "group", g.id, "member", m.id)
	case !m.revokeDeadline.IsZero() && !now.Before(m.revokeDeadline):
		g.c.lg.Info("consumer group member did not revoke in time", "group", g.id, "member", m.id, "rebalance_timeout", m.rebalanceTimeout)
	default:
		next := m.deadline.Sub(now)
		if !m.revokeDeadline.IsZero() {
			next = min(next, m.revokeDeadline.Sub(now))
		}
		m.timer.Reset(next)
		return
	}
	g.removeConsumer(m)
}

// checkConsumerCommit validates an OffsetCommit to a consumer group: the
// member epoch is the generation. An older epoch is accepted when every
// committed partition is still the member's: Kafka 4.0 demands equality,
// which fails a commit racing an epoch bump (franz-go documents this as
// unavoidable before Kafka 4.3), and such a commit is still safe.
func (g *group) checkConsumerCommit(ref MemberRef, epoch int32, tps []TP) int16 {
	cg := g.cg
	if epoch < 0 && ref.MemberID == "" {
		if len(cg.members) == 0 {
			return 0
		}
		return kerr.UnknownMemberID.Code
	}
	m := cg.members[ref.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case ref.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *ref.InstanceID):
		return kerr.FencedInstanceID.Code
	case epoch == m.epoch:
		return 0
	case epoch > m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	for _, tp := range tps {
		if !m.assigned[tp] && !m.revoking[tp] {
			return kerr.StaleMemberEpoch.Code
		}
	}
	return 0
}

// ConsumerDescription is a ConsumerGroupDescribe answer for one group.
type ConsumerDescription struct {
	// Err: GROUP_ID_NOT_FOUND for unknown or classic groups.
	Err                int16
	ErrMsg             string
	State              string
	Epoch, AssignEpoch int32
	Assignor           string
	Members            []ConsumerMemberDescription
}

// ConsumerMemberDescription is one member of a ConsumerDescription.
type ConsumerMemberDescription struct {
	MemberID, ClientID, ClientHost string
	InstanceID, RackID             *string
	Epoch                          int32
	Subscribed                     []string
	Regex                          *string
	Assignment, Target             []TopicAssignment
}

func (g *group) consumerDescribe() ConsumerDescription {
	if g.state == stateDead {
		return ConsumerDescription{Err: kerr.GroupIDNotFound.Code, ErrMsg: "group " + g.id + " not found"}
	}
	if g.cg == nil {
		if len(g.members) == 0 && g.state == stateEmpty {
			return ConsumerDescription{Err: kerr.GroupIDNotFound.Code, ErrMsg: "group " + g.id + " not found"}
		}
		return ConsumerDescription{Err: kerr.GroupIDNotFound.Code, ErrMsg: "group " + g.id + " is not a consumer group"}
	}
	cg := g.cg
	d := ConsumerDescription{State: cg.state(), Epoch: cg.epoch, AssignEpoch: cg.assignEpoch, Assignor: cg.assignor}
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := cg.members[id]
		d.Members = append(d.Members, ConsumerMemberDescription{
			MemberID: m.id, ClientID: m.clientID, ClientHost: m.clientHost, InstanceID: m.instanceID, RackID: m.rackID,
			Epoch: m.epoch, Subscribed: m.subscribed, Regex: m.regex,
			Assignment: g.assignmentOf(m.assigned), Target: g.assignmentOf(cg.target[m.id]),
		})
	}
	return d
}
