package group

import (
	"context"
	"sort"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type state int8

const (
	stateEmpty state = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

// String is the name Kafka uses (DescribeGroups, ListGroups).
func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparing:
		return "PreparingRebalance"
	case stateCompleting:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Protocol is one (assignor name, metadata) pair a member supports.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup.
type JoinRequest struct {
	Group, MemberID      string
	InstanceID           *string
	ClientID, ClientHost string
	SessionTimeout       time.Duration
	RebalanceTimeout     time.Duration
	ProtocolType         string
	Protocols            []Protocol
	// RequireKnownMemberID: JoinGroup v4+ (KIP-394) answers a first join
	// without a member id with MEMBER_ID_REQUIRED and an assigned id.
	RequireKnownMemberID bool
}

// JoinMember is one member's metadata as the leader receives it.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult answers a JoinGroup.
type JoinResult struct {
	Err                    int16
	Generation             int32
	ProtocolType, Protocol string
	Leader, MemberID       string
	Members                []JoinMember // leader only
	SkipAssignment         bool         // static leader rejoining a stable group
}

// SyncRequest is a SyncGroup.
type SyncRequest struct {
	Group, MemberID        string
	InstanceID             *string
	Generation             int32
	ProtocolType, Protocol *string
	Assignments            map[string][]byte
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err                    int16
	ProtocolType, Protocol string
	Assignment             []byte
}

// MemberRef names a member (heartbeat, leave, commit).
type MemberRef struct {
	MemberID   string
	InstanceID *string
}

// Description is a DescribeGroups answer for one group.
type Description struct {
	State, ProtocolType, Protocol string
	Members                       []MemberDescription
}

// MemberDescription is one member in a Description.
type MemberDescription struct {
	MemberID, ClientID, ClientHost string
	InstanceID                     *string
	Metadata, Assignment           []byte
}

type member struct {
	id                   string
	instanceID           *string
	clientID, clientHost string
	sessionTimeout       time.Duration
	rebalanceTimeout     time.Duration
	protocolType         string
	protocols            []Protocol
	assignment           []byte
	joinSeq              uint64

	joinCh   chan JoinResult // a JoinGroup waiting for the rebalance
	syncCh   chan SyncResult // a SyncGroup waiting for the leader
	deadline time.Time       // session expiry
	timer    *time.Timer
}

// summary is what a group publishes for lock-free reads (ListGroups).
type summary struct {
	state        state
	protocolType string
	consumer     string // consumer-protocol state; "" for classic groups
}

// group is one consumer group. Every field below reqs is owned by the
// goroutine running loop.
type group struct {
	c    *Coordinator
	id   string
	reqs chan func()
	done chan struct{}
	// cgWaits are the durability waits of the consumer-group records
	// appended by the operation now running (appendCG); a heartbeat
	// answers after them, the loop drops them after other operations.
	cgWaits []func(context.Context) error

	pub atomic.Pointer[summary]
	// emptySince: -1 while the group has members; unix ms when it became
	// Empty; 0 when Empty since an unknown time (created by a standalone
	// commit or by loading offsets at start).
	emptySince atomic.Int64

	state          state
	protocolType   string
	protocol       string
	generation     int32
	leader         string
	members        map[string]*member
	static         map[string]string // instance id -> member id
	pending        map[string]*time.Timer
	rebalanceTimer *time.Timer
	rebalanceSeq   uint64
	joinSeq        uint64
	deadSince      time.Time
	// cg is set while the group runs the consumer protocol (KIP-848,
	// consumer.go); classic requests then see no classic members.
	cg *cgroup
	// persisted is the persistKey of the last group-metadata record
	// written (persist.go); memberChanges counts changes of the member
	// set, which it includes.
	persisted     persistKey
	memberChanges uint64
	// csaved summarises the consumer-group records written (persist848.go);
	// nil when there are none.
	csaved *cgSaved

	// initialJoin: this join phase started from Empty and waits out
	// group.initial.rebalance.delay.ms (Kafka's InitialDelayedJoin); only
	// its timer completes it. newMemberAdded: a member joined since the
	// timer was last set, so it is extended.
	initialJoin, newMemberAdded bool
}

func newGroup(c *Coordinator, id string) *group {
	g := &group{
		c: c, id: id, reqs: make(chan func(), 256), done: make(chan struct{}),
		members: map[string]*member{}, static: map[string]string{}, pending: map[string]*time.Timer{},
	}
	g.publish()
	return g
}

// deadLinger is how long a Dead group's goroutine keeps answering requests
// that looked it up before it left the registry.
const deadLinger = time.Minute

func (g *group) loop() {
	defer close(g.done)
	var linger <-chan time.Time
	for {
		select {
		case f := <-g.reqs:
			f()
			g.publish()
			g.persist()
			g.cgWaits = nil
			if g.state == stateDead && linger == nil {
				linger = time.After(deadLinger)
			}
		case <-linger:
			return
		case <-g.c.quit:
			g.stopTimers()
			return
		}
	}
}

// post runs f on the group's goroutine; false if the goroutine ended.
func (g *group) post(f func()) bool {
	select {
	case <-g.done:
		return false
	default:
	}
	select {
	case g.reqs <- f:
		return true
	case <-g.done:
		return false
	}
}

func (g *group) publish() {
	cs := ""
	if g.cg != nil {
		cs = g.cg.state()
	}
	if p := g.pub.Load(); p == nil || p.state != g.state || p.protocolType != g.protocolType || p.consumer != cs {
		g.pub.Store(&summary{state: g.state, protocolType: g.protocolType, consumer: cs})
	}
}

func (g *group) stopTimers() {
	for _, m := range g.members {
		m.timer.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			m.timer.Stop()
		}
	}
}

func (g *group) fenced(inst *string, memberID string) bool {
	if inst == nil {
		return false
	}
	id, ok := g.static[*inst]
	return ok && id != memberID
}

func (g *group) touch(m *member) { m.deadline = time.Now().Add(m.sessionTimeout) }

// --- JoinGroup ---

func (g *group) join(req *JoinRequest, ch chan JoinResult) {
	fail := func(code int16) { ch <- JoinResult{Err: code, MemberID: req.MemberID, Generation: -1} }
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			fail(kerr.InconsistentGroupProtocol.Code) // a consumer-protocol group
			return
		}
		g.cg, g.protocolType = nil, "" // an empty consumer group turns classic
	}
	switch {
	case g.state == stateDead:
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	case req.SessionTimeout < g.c.opts.MinSessionTimeout || req.SessionTimeout > g.c.opts.MaxSessionTimeout:
		fail(kerr.InvalidSessionTimeout.Code)
		return
	case g.state != stateEmpty && (req.ProtocolType != g.protocolType || !g.supportsAny(req.MemberID, req.Protocols)):
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	if req.MemberID == "" {
		g.joinUnknown(req, ch)
		return
	}
	if g.fenced(req.InstanceID, req.MemberID) {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		g.addAndJoin(req.MemberID, req, ch)
		return
	}
	m := g.members[req.MemberID]
	if m == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	changed := m.protocolType != req.ProtocolType || !sameProtocols(m.protocols, req.Protocols)
	g.update(m, req)
	if m.joinCh != nil && m.joinCh != ch {
		m.joinCh <- JoinResult{Err: kerr.RebalanceInProgress.Code, MemberID: m.id, Generation: -1}
	}
	m.joinCh = ch
	g.afterJoin(m, changed)
}

// supportsAny: some protocol of protos is supported by every other member.
func (g *group) supportsAny(self string, protos []Protocol) bool {
	for _, p := range protos {
		ok := true
		for id, m := range g.members {
			if id != self && !m.supports(p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *group) joinUnknown(req *JoinRequest, ch chan JoinResult) {
	id := g.c.newMemberID(req.ClientID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok {
			g.replaceStatic(old, id, req, ch)
			return
		}
		g.addAndJoin(id, req, ch) // static members skip MEMBER_ID_REQUIRED (KIP-345)
		return
	}
	if req.RequireKnownMemberID {
		g.pending[id] = time.AfterFunc(req.SessionTimeout, func() {
			g.post(func() { g.expirePending(id) })
		})
		ch <- JoinResult{Err: kerr.MemberIDRequired.Code, MemberID: id, Generation: -1}
		return
	}
	g.addAndJoin(id, req, ch)
}

func (g *group) expirePending(id string) {
	if _, ok := g.pending[id]; !ok {
		return
	}
	delete(g.pending, id)
	g.maybeCompleteJoin()
}

func (g *group) update(m *member, req *JoinRequest) {
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
}

func (g *group) addAndJoin(id string, req *JoinRequest, ch chan JoinResult) {
	g.joinSeq++
	m := &member{id: id, instanceID: req.InstanceID, joinSeq: g.joinSeq, joinCh: ch}
	g.update(m, req)
	g.touch(m)
	m.timer = time.AfterFunc(m.sessionTimeout, func() { g.post(func() { g.checkSession(m) }) })
	g.members[id] = m
	g.memberChanges++
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	if g.initialJoin {
		g.newMemberAdded = true
	}
	if g.state == stateEmpty {
		g.protocolType = req.ProtocolType
	}
	g.afterJoin(m, true)
}

// replaceStatic gives a static member that rejoined without its member id
// (a restarted process) a new id, fencing the old one (KIP-345). A stable
// group keeps its assignment: no rebalance.
func (g *group) replaceStatic(oldID, newID string, req *JoinRequest, ch chan JoinResult) {
	old := g.members[oldID]
	if old == nil { // cannot happen: static ids always name a member
		delete(g.static, *req.InstanceID)
		g.addAndJoin(newID, req, ch)
		return
	}
	changed := old.protocolType != req.ProtocolType || !sameProtocols(old.protocols, req.Protocols)
	if old.joinCh != nil {
		old.joinCh <- JoinResult{Err: kerr.FencedInstanceID.Code, MemberID: oldID, Generation: -1}
		old.joinCh = nil
	}
	if old.syncCh != nil {
		old.syncCh <- SyncResult{Err: kerr.FencedInstanceID.Code}
		old.syncCh = nil
	}
	delete(g.members, oldID)
	g.memberChanges++
	old.id = newID
	g.members[newID] = old
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	g.update(old, req)
	g.touch(old)
	if g.state == stateStable && !changed {
		res := g.joinResult(old)
		res.Members = nil
		res.SkipAssignment = old.id == g.leader
		ch <- res
		return
	}
	old.joinCh = ch
	g.afterJoin(old, true)
}

func (g *group) afterJoin(m *member, changed bool) {
	switch g.state {
	case stateEmpty:
		g.prepareRebalance()
	case statePreparing:
		g.maybeCompleteJoin()
	case stateCompleting:
		if changed {
			g.prepareRebalance()
		} else {
			g.answerJoin(m) // a repeated join of this generation
		}
	case stateStable:
		if changed || m.id == g.leader {
			g.prepareRebalance()
		} else {
			g.answerJoin(m)
		}
	}
}

func (g *group) prepareRebalance() {
	if g.state == stateCompleting {
		for _, m := range g.members {
			if m.syncCh != nil {
				m.syncCh <- SyncResult{Err: kerr.RebalanceInProgress.Code}
				m.syncCh = nil
			}
		}
	}
	for _, m := range g.members {
		m.assignment = nil
	}
	initial := g.state == stateEmpty
	g.state = statePreparing
	g.emptySince.Store(-1)
	g.rebalanceSeq++
	seq := g.rebalanceSeq
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.initialJoin, g.newMemberAdded = false, false
	if delay := g.c.InitialRebalanceDelay(); initial && delay > 0 {
		// A new group: give the other instances started with this one
		// time to join, so they form one generation (Kafka's
		// InitialDelayedJoin: delay, extended by delay while members keep
		// joining, at most max(delay, rebalance timeout) in total).
		g.initialJoin = true
		g.scheduleInitialJoin(seq, delay, delay, max(timeout-delay, 0))
		return
	}
	g.rebalanceTimer = time.AfterFunc(timeout, func() {
		g.post(func() {
			if g.rebalanceSeq == seq && g.state == statePreparing {
				g.completeJoin()
			}
		})
	})
	g.maybeCompleteJoin()
}

// scheduleInitialJoin arms the initial join's timer for wait; when it fires
// the join completes unless a member joined meanwhile and remaining (the
// rebalance timeout not yet spent) allows another min(delay, remaining).
func (g *group) scheduleInitialJoin(seq uint64, delay, wait, remaining time.Duration) {
	g.rebalanceTimer = time.AfterFunc(wait, func() {
		g.post(func() {
			if g.rebalanceSeq != seq || g.state != statePreparing || !g.initialJoin {
				return
			}
			if next, left, ok := extendInitialJoin(delay, wait, remaining, g.newMemberAdded); ok {
				g.newMemberAdded = false
				g.scheduleInitialJoin(seq, delay, next, left)
				return
			}
			g.completeJoin()
		})
	})
}

// extendInitialJoin is Kafka's rule for extending an initial join whose
// timer of wait just fired with remaining of the rebalance timeout unspent:
// if a member joined meanwhile, wait min(delay, remaining) more, leaving
// remaining-wait; otherwise (or with nothing left) complete. The total wait
// is therefore at most max(delay, rebalance timeout).
func extendInitialJoin(delay, wait, remaining time.Duration, joined bool) (next, left time.Duration, ok bool) {
	if !joined || remaining <= 0 {
		return 0, 0, false
	}
	return min(delay, remaining), max(remaining-wait, 0), true
}

func (g *group) maybeCompleteJoin() {
	if g.state != statePreparing || g.initialJoin || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are removed,
// the generation advances and every waiting JoinGroup is answered.
func (g *group) completeJoin() {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.initialJoin, g.newMemberAdded = false, false
	for _, m := range g.members {
		if m.joinCh == nil {
			g.remove(m)
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	g.generation++
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol, g.leader = "", ""
		g.emptySince.Store(g.c.opts.Now().UnixMilli())
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		var first *member
		for _, m := range g.members {
			if first == nil || m.joinSeq < first.joinSeq {
				first = m
			}
		}
		g.leader = first.id
	}
	g.state = stateCompleting
	for _, m := range g.members {
		g.answerJoin(m)
	}
}

// selectProtocol picks, among the protocols every member supports, the one
// most members prefer (each votes for its first supported choice); ties go
// to the leader-candidate's order of preference.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinSeq < ms[j].joinSeq })
	return ms
}

func (g *group) joinResult(m *member) JoinResult {
	res := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, MemberID: m.id}
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			res.Members = append(res.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID, Metadata: o.metadata(g.protocol)})
		}
	}
	return res
}

func (g *group) answerJoin(m *member) {
	if m.joinCh == nil {
		return
	}
	m.joinCh <- g.joinResult(m)
	m.joinCh = nil
	g.touch(m)
}

// remove drops m, answering its waiting requests with UNKNOWN_MEMBER_ID.
func (g *group) remove(m *member) {
	m.timer.Stop()
	if m.joinCh != nil {
		m.joinCh <- JoinResult{Err: kerr.UnknownMemberID.Code, MemberID: m.id, Generation: -1}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- SyncResult{Err: kerr.UnknownMemberID.Code}
		m.syncCh = nil
	}
	delete(g.members, m.id)
	g.memberChanges++
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// membersChanged reacts to members leaving or expiring.
func (g *group) membersChanged() {
	switch g.state {
	case stateStable, stateCompleting:
		g.prepareRebalance()
	case statePreparing:
		g.maybeCompleteJoin()
	}
}

func (g *group) checkSession(m *member) {
	if g.members[m.id] != m {
		return
	}
	now := time.Now()
	if m.joinCh != nil || m.syncCh != nil {
		// Waiting on the coordinator counts as alive.
		g.touch(m)
		m.timer.Reset(m.sessionTimeout)
		return
	}
	if now.Before(m.deadline) {
		m.timer.Reset(m.deadline.Sub(now))
		return
	}
	g.c.lg.Info("member session expired", "group", g.id, "member", m.id, "session_timeout", m.sessionTimeout)
	g.remove(m)
	g.membersChanged()
}

// --- SyncGroup ---

func (g *group) sync(req *SyncRequest, ch chan SyncResult) {
	fail := func(code int16) { ch <- SyncResult{Err: code} }
	if g.state == stateDead {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	if g.fenced(req.InstanceID, req.MemberID) {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		fail(kerr.UnknownMemberID.Code)
		return
	case req.Generation != g.generation:
		fail(kerr.IllegalGeneration.Code)
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	switch g.state {
	case statePreparing:
		fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		g.touch(m)
		ch <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
	case stateCompleting:
		if m.syncCh != nil {
			m.syncCh <- SyncResult{Err: kerr.RebalanceInProgress.Code}
		}
		m.syncCh = ch
		g.touch(m)
		if m.id != g.leader {
			return
		}
		for id, o := range g.members {
			o.assignment = req.Assignments[id]
		}
		g.state = stateStable
		for _, o := range g.members {
			if o.syncCh != nil {
				o.syncCh <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment}
				o.syncCh = nil
			}
		}
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// --- Heartbeat, LeaveGroup, commit checks ---

func (g *group) heartbeat(ref MemberRef, generation int32) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.fenced(ref.InstanceID, ref.MemberID) {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[ref.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.touch(m)
	if g.state == statePreparing {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

func (g *group) leave(refs []MemberRef) []int16 {
	codes := make([]int16, len(refs))
	left := false
	for i, ref := range refs {
		if g.state == stateDead {
			codes[i] = kerr.CoordinatorNotAvailable.Code
			continue
		}
		id := ref.MemberID
		if ref.InstanceID != nil {
			sid, ok := g.static[*ref.InstanceID]
			if !ok {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
			if id != "" && id != sid {
				codes[i] = kerr.FencedInstanceID.Code
				continue
			}
			id = sid
		}
		if t, ok := g.pending[id]; ok {
			t.Stop()
			delete(g.pending, id)
			left = true
			continue
		}
		m := g.members[id]
		if m == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		g.remove(m)
		left = true
	}
	if left {
		g.membersChanged()
	}
	return codes
}

// checkCommit validates an OffsetCommit against the membership, as Kafka
// does: standalone commits (generation < 0) only into an Empty group.
func (g *group) checkCommit(ref MemberRef, generation int32) int16 {
	switch {
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case g.fenced(ref.InstanceID, ref.MemberID):
		return kerr.FencedInstanceID.Code
	case generation < 0 && g.state == stateEmpty:
		return 0
	case g.state == stateCompleting:
		return kerr.RebalanceInProgress.Code
	}
	m := g.members[ref.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.touch(m)
	return 0
}

func (g *group) describe() Description {
	if g.cg != nil {
		return Description{} // not a classic group: ConsumerGroupDescribe
	}
	d := Description{State: g.state.String(), ProtocolType: g.protocolType}
	if g.state == stateStable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == stateStable {
			md.Metadata = m.metadata(g.protocol)
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// subscribedTopics returns the topics members of a consumer group subscribe
// to, parsed from their protocol metadata (OffsetDelete refuses those).
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	if g.cg != nil {
		for _, m := range g.cg.members {
			for _, t := range g.topicsOf(m) {
				out[t] = true
			}
		}
		return out
	}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		for _, t := range consumerTopics(m.metadata(g.protocol)) {
			out[t] = true
		}
	}
	return out
}
