package metadata

// Broker registrations, as Kafka's KRaft controllers keep them: a broker
// registers with its listeners (a "register_broker" entry; its broker epoch
// is that entry's log index) and then heartbeats the controller, the
// quorum's leader. Heartbeats are not log entries: the controller keeps the
// time of each broker's last one in memory and writes "fence_broker" when a
// broker's session (broker.session.timeout.ms) passes without one; a fenced
// broker's next heartbeat unfences it. A new controller starts every
// broker's session afresh.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Broker is a registered broker.
type Broker struct {
	ID int32 `json:"id"`
	// Incarnation is new at every start of the broker process.
	Incarnation string     `json:"incarnation"`
	Listeners   []Listener `json:"listeners"`
	Rack        string     `json:"rack,omitempty"`
	// Epoch is the log index of the registration (set when applied).
	Epoch  int64 `json:"epoch"`
	Fenced bool  `json:"fenced,omitempty"`
}

// Listener is one endpoint a broker advertises to clients.
type Listener struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// SortedBrokers returns the registered brokers by id.
func (im *Image) SortedBrokers() []*Broker {
	out := slices.Collect(maps.Values(im.Brokers))
	slices.SortFunc(out, func(a, b *Broker) int { return int(a.ID) - int(b.ID) })
	return out
}

// Errors of broker registration and heartbeats.
var (
	// ErrDuplicateBroker refuses a registration while another process
	// with that node id holds a live session (Kafka's
	// DUPLICATE_BROKER_REGISTRATION).
	ErrDuplicateBroker = errors.New("metadata: another broker process with this node id is registered and heartbeating; give each broker its own --node-id")
	// ErrStaleBroker answers a heartbeat or fence for a registration that
	// was replaced: the broker must register again.
	ErrStaleBroker = errors.New("metadata: broker registration replaced (stale broker epoch)")
)

// BrokerOptions start a broker's registration and heartbeats (Store.Register).
type BrokerOptions struct {
	Listeners []Listener
	Rack      string
	// HeartbeatInterval is broker.heartbeat.interval.ms (2 s if 0). The
	// session timeout is the controller's: Options.BrokerSessionTimeout.
	HeartbeatInterval time.Duration
}

// controller is the leader's in-memory broker sessions.
type controller struct {
	mu       sync.Mutex
	lastSeen map[int32]time.Time
	logEnd   map[int32]uint64 // Raft log end each broker's last heartbeat reported
	session  time.Duration
	stop     chan struct{} // closed when this node stops leading
}

// checkBroker applies a broker record's preconditions.
func (im *Image) checkBroker(rec *record) error {
	switch rec.Type {
	case "fence_broker", "unfence_broker":
		b := im.Brokers[rec.NodeID]
		if b == nil || b.Epoch != rec.Epoch {
			return ErrStaleBroker
		}
		if b.Fenced == (rec.Type == "fence_broker") {
			return errNoChange
		}
	}
	return nil
}

var errNoChange = errors.New("metadata: no change")

func (im *Image) applyBroker(rec *record) {
	switch rec.Type {
	case "register_broker":
		b := *rec.Broker
		b.Epoch, b.Fenced = int64(rec.index), false
		if rec.Alone || im.Brokers == nil {
			im.Brokers = map[int32]*Broker{}
		}
		im.Brokers[b.ID] = &b
		if im.placesOnRegister(&b, rec.Alone) {
			im.placeOnRegister(&b, rec.Alone)
		}
	case "fence_broker", "unfence_broker":
		b := *im.Brokers[rec.NodeID] // checked
		b.Fenced = rec.Type == "fence_broker"
		im.Brokers[b.ID] = &b
	}
}

// Register registers this node as a broker and keeps its session alive
// with heartbeats until Close. It returns once the registration is in this
// node's image.
func (s *Store) Register(o BrokerOptions) error {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 2 * time.Second
	}
	var inc [16]byte
	rand.Read(inc[:])
	b := &Broker{ID: s.q.id, Incarnation: base64.RawURLEncoding.EncodeToString(inc[:]), Listeners: o.Listeners, Rack: o.Rack}
	if err := s.register(b); err != nil {
		return err
	}
	s.hbStop, s.hbDone = make(chan struct{}), make(chan struct{})
	s.q.wg.Add(1)
	go func() {
		defer s.q.wg.Done()
		defer close(s.hbDone)
		t := time.NewTicker(o.HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-s.q.done:
				return
			case <-s.hbStop:
				return
			case <-t.C:
			}
			err := s.q.heartbeat(s.Image().Brokers[b.ID])
			if errors.Is(err, ErrStaleBroker) {
				err = s.register(b)
			}
			if err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
				s.lg.Warn("broker heartbeat to the controller failed; retrying", "err", err)
			}
		}
	}()
	return nil
}

// Deregister ends this broker's session at a clean shutdown (Kafka's
// controlled shutdown, as far as it goes without replicas to move
// leadership to): heartbeats stop and the broker is fenced at once, so the
// other brokers report its partitions leaderless now rather than after a
// session timeout, and its next start registers without waiting for this
// session to run out; the quorum's leader also hands its leadership to a
// follower. A broker alone does nothing (nobody else to tell).
// Bounded by d; a failure is returned for the log and changes nothing
// else: the session then runs out as after a crash.
func (s *Store) Deregister(d time.Duration) error {
	if s.q.alone || s.hbStop == nil {
		return nil
	}
	close(s.hbStop)
	<-s.hbDone
	b := s.Image().Brokers[s.q.id]
	if b == nil || b.Fenced {
		return nil
	}
	if addr, _ := s.q.r.LeaderWithID(); addr == "" {
		return errors.New("metadata: no quorum leader to tell (the rest of the cluster is stopping or unreachable)")
	}
	done := make(chan error, 1)
	go func() {
		err := s.commit(&record{Type: "fence_broker", NodeID: b.ID, Epoch: b.Epoch})
		if errors.Is(err, errNoChange) || errors.Is(err, ErrStaleBroker) {
			err = nil
		}
		// The quorum's leader hands leadership to a follower before it
		// stops: followers learn that the fence committed only from a
		// leader, and an election after a timeout would cost seconds.
		if err == nil && s.q.r.State() == raft.Leader {
			if terr := s.q.r.LeadershipTransfer().Error(); terr != nil {
				s.lg.Warn("could not hand over the quorum's leadership before stopping; the others elect a leader after their timeout", "err", terr)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("metadata: fencing this broker at shutdown took over %v", d)
	}
}

func (s *Store) register(b *Broker) error {
	rec := &record{Type: "register_broker", Broker: b, Alone: s.q.alone}
	for {
		err := s.q.registerBroker(rec)
		if !errors.Is(err, ErrDuplicateBroker) {
			return err
		}
		// A restarted broker finds its previous process's session still
		// open: wait for it to run out, as Kafka's brokers do.
		s.lg.Warn("waiting for the previous registration of this node id to expire", "node_id", b.ID)
		select {
		case <-s.q.done:
			return raft.ErrRaftShutdown
		case <-time.After(time.Second):
		}
	}
}

// registerBroker commits a registration through the leader, which refuses
// it while another incarnation of the id holds a live session.
func (q *quorum) registerBroker(rec *record) error { return q.applyOp("register", rec) }

// heartbeat renews the session of b (this node's registration as its image
// has it; nil: none) with the controller.
func (q *quorum) heartbeat(b *Broker) error {
	if b == nil {
		return ErrStaleBroker
	}
	return q.applyOp("heartbeat", &record{Type: "heartbeat", NodeID: b.ID, Epoch: b.Epoch, LogEnd: q.r.LastIndex()})
}

// leaderOp runs a registration or heartbeat on the leader (this node).
func (q *quorum) leaderOp(op string, rec *record) (uint64, error) {
	c := q.ctl()
	im := q.fsm.s.Image()
	if c == nil || im == nil { // not leading, or not caught up yet
		return 0, raft.ErrNotLeader
	}
	switch op {
	case "register":
		c.mu.Lock()
		old, seen := im.Brokers[rec.Broker.ID], c.lastSeen[rec.Broker.ID]
		c.mu.Unlock()
		if old != nil && !old.Fenced && old.Incarnation != rec.Broker.Incarnation && time.Since(seen) < c.session && !rec.Alone {
			return 0, ErrDuplicateBroker
		}
		idx, err := q.leaderApply(rec)
		if err == nil {
			c.mu.Lock()
			c.lastSeen[rec.Broker.ID] = time.Now()
			c.mu.Unlock()
		}
		return idx, err
	case "heartbeat":
		b := im.Brokers[rec.NodeID]
		if b == nil || b.Epoch != rec.Epoch {
			return 0, ErrStaleBroker
		}
		c.mu.Lock()
		c.lastSeen[rec.NodeID] = time.Now()
		c.logEnd[rec.NodeID] = rec.LogEnd
		c.mu.Unlock()
		if b.Fenced {
			return q.leaderApply(&record{Type: "unfence_broker", NodeID: rec.NodeID, Epoch: rec.Epoch})
		}
		return 0, nil // nothing written: the sender need not wait for anything
	}
	return 0, fmt.Errorf("unknown operation %q", op)
}

// leaderApply commits rec on this node, the leader, and returns its index.
func (q *quorum) leaderApply(rec *record) (uint64, error) {
	data, err := jsonRecord(rec)
	if err != nil {
		return 0, err
	}
	f := q.r.Apply(data, 10*time.Second)
	if err := f.Error(); err != nil {
		return 0, err
	}
	if rerr, ok := f.Response().(error); ok && !errors.Is(rerr, errNoChange) {
		return f.Index(), rerr
	}
	return f.Index(), nil
}

func (q *quorum) ctl() *controller {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	return q.ctlr
}

// lead runs the controller's duties while this node leads: every broker's
// session starts now, and a broker silent for a session is fenced.
func (q *quorum) lead(session time.Duration) {
	// Every broker's session starts when this node first sees it as
	// leader (lastSeen absent: now).
	c := &controller{lastSeen: map[int32]time.Time{}, logEnd: map[int32]uint64{}, session: session, stop: make(chan struct{})}
	q.ctlMu.Lock()
	q.ctlr = c
	q.ctlMu.Unlock()
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		t := time.NewTicker(min(session/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-q.done:
				return
			case <-t.C:
			}
			im := q.fsm.s.Image()
			if im == nil {
				continue // still catching up at start
			}
			for _, b := range im.Brokers {
				c.mu.Lock()
				seen, ok := c.lastSeen[b.ID]
				if !ok {
					seen = time.Now()
					c.lastSeen[b.ID] = seen
				}
				c.mu.Unlock()
				if b.Fenced || time.Since(seen) < session {
					continue
				}
				_, err := q.leaderApply(&record{Type: "fence_broker", NodeID: b.ID, Epoch: b.Epoch})
				if err == nil {
					q.lg.Warn("broker fenced: no heartbeat for a session", "node_id", b.ID, "broker_epoch", b.Epoch,
						"session_timeout", session)
				}
			}
		}
	}()
}

// follow ends the controller's duties when this node stops leading.
func (q *quorum) follow() {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	if q.ctlr != nil {
		close(q.ctlr.stop)
		q.ctlr = nil
	}
}

// WaitBrokers waits up to d until at least n brokers are registered and
// unfenced, and reports whether they are. A cluster's first broker waits
// for the others before placing its internal topics, so their partitions
// (and so the coordinators) spread over every broker.
func (s *Store) WaitBrokers(n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		live := 0
		for _, b := range s.Image().Brokers {
			if !b.Fenced {
				live++
			}
		}
		if live >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-s.q.done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
