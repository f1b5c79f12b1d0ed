package metadata

// The metadata quorum: the metadata log is a Raft log (hashicorp/raft,
// stored in BoltDB by raft-boltdb/v2) and the image is its state machine.
// A broker alone is a cluster of one voter with no network; a broker given
// peers (Options.Peers) is one voter of several, reached over one TCP port
// that carries both Raft's own traffic and writes forwarded to the leader.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Dir is the metadata quorum's directory under the data dir (Kafka's KRaft
// log is `__cluster_metadata-0` too): raft.db holds the Raft log and its
// term and vote, snapshots/ the image at a log index.
const Dir = "__cluster_metadata-0"

// Peer is one voter of the metadata quorum.
type Peer struct {
	ID   int32
	Addr string // host:port of its cluster listener
}

// ParsePeers parses `id@host:port,...`.
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[int32]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, addr, ok := strings.Cut(f, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("peer %q: want id@host:port with a node id >= 0", f)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %v", f, err)
		}
		if seen[int32(n)] {
			return nil, fmt.Errorf("peer %q: node id %d given twice", f, n)
		}
		seen[int32(n)] = true
		out = append(out, Peer{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// Options configure Open.
type Options struct {
	DataDir string
	Logger  *slog.Logger
	// NodeID is this broker's id; with Peers it must be one of them.
	NodeID int32
	// Peers are the voters. None: a cluster of this node alone, with no
	// network and a Raft election that takes milliseconds.
	Peers []Peer
	// Listener, if set, serves this node's cluster traffic instead of a
	// listener opened on its own peer address (tests pass one bound to
	// port 0).
	Listener net.Listener
	// HeartbeatTimeout is how long a follower waits to hear from the
	// leader before it stands for election (1 s if 0). The election takes
	// between one and two of it.
	HeartbeatTimeout time.Duration
	// BrokerSessionTimeout is how long the controller waits for a
	// registered broker's heartbeat before fencing it
	// (broker.session.timeout.ms, 9 s if 0).
	BrokerSessionTimeout time.Duration
}

// A snapshot is taken after snapshotThreshold entries (checked every
// couple of minutes) and at a clean close after more than snapshotAtClose:
// a start replays at most about that many entries after restoring one.
const (
	snapshotThreshold = 4096
	snapshotAtClose   = 256
)

// errClusterSet answers a second cluster-id or image record: the first one
// applied wins on every node.
var errClusterSet = errors.New("metadata: cluster id already set")

// errCodes carry the state machine's refusals across a forwarded write.
var errCodes = map[string]error{
	"topic_exists":     ErrTopicExists,
	"no_topic":         ErrNoTopic,
	"partitions_le":    ErrPartitionsLE,
	"cluster_set":      errClusterSet,
	"duplicate_broker": ErrDuplicateBroker,
	"stale_broker":     ErrStaleBroker,
	"pid_conflict":     errPIDConflict,
}

type quorum struct {
	r     *raft.Raft
	fsm   *fsm
	logs  *raftboltdb.BoltStore
	trans io.Closer
	mux   *mux // nil alone
	self  raft.ServerID
	id    int32
	alone bool
	lg    *slog.Logger

	done      chan struct{} // closed by close
	closeOnce sync.Once
	wg        sync.WaitGroup // goroutines that end with done

	ctlMu sync.Mutex
	ctlr  *controller // while this node leads

	peerAddrs map[raft.ServerID]string // Options.Peers by id
}

// fsm is the image as Raft's state machine. Until published, entries are
// applied in place to a private image (replay at start: linear in the log,
// where a copy per record is quadratic in the number of topics); after,
// every entry makes a modified copy that readers load without locks.
type fsm struct {
	s       *Store
	mu      sync.Mutex
	private *Image
	applied atomic.Uint64 // index of the last command entry applied (or restored)
}

func (f *fsm) Apply(l *raft.Log) (result any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.applied.Store(l.Index)
	defer func() {
		// An entry every node would fail on forever must not stop them all:
		// it is skipped, loudly.
		if p := recover(); p != nil {
			f.s.lg.Error("metadata record could not be applied; skipped", "index", l.Index, "panic", p)
			result = fmt.Errorf("metadata: record at index %d: %v", l.Index, p)
		}
	}()
	var rec record
	if err := json.Unmarshal(l.Data, &rec); err != nil {
		f.s.lg.Error("metadata record not understood; skipped", "index", l.Index, "err", err)
		return fmt.Errorf("metadata: record at index %d: %w", l.Index, err)
	}
	rec.index = l.Index
	if f.private != nil {
		if err := f.private.check(&rec); err != nil {
			return err
		}
		f.private.apply(&rec)
		return nil
	}
	cur := f.s.image.Load()
	if err := cur.check(&rec); err != nil {
		return err
	}
	next := cur.copyFor(&rec)
	next.apply(&rec)
	next.base, next.seq, next.touched = cur.seq, l.Index, ""
	switch rec.Type {
	case "topic", "delete_topic", "partitions":
		next.touched = rec.Name
	}
	f.s.image.Store(next)
	f.s.poke()
	return nil
}

// published reports whether replay is over.
func (f *fsm) published() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.private == nil
}

// publish makes the replayed image the one readers see.
func (f *fsm) publish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.private != nil {
		// No follower can derive this image by one change: a full compare.
		f.private.seq, f.private.base = f.applied.Load(), math.MaxUint64
		f.s.image.Store(f.private)
		f.private = nil
		f.s.poke()
	}
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im := f.private
	if im == nil {
		im = f.s.image.Load()
	}
	return &fsmSnapshot{file: im.file(), applied: f.applied.Load()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var sf snapshotFile
	if err := json.NewDecoder(rc).Decode(&sf); err != nil {
		return fmt.Errorf("metadata: snapshot: %w", err)
	}
	if sf.Version != 1 {
		return fmt.Errorf("metadata: snapshot version %d not understood (this broker reads version 1; run the newer release)", sf.Version)
	}
	im := sf.Image.image()
	im.seq, im.base = sf.Applied, math.MaxUint64 // followers compare everything after a restore
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.private != nil {
		f.private = im
	} else {
		f.s.image.Store(im)
		f.s.poke()
	}
	f.applied.Store(sf.Applied)
	return nil
}

type snapshotFile struct {
	Version int        `json:"version"`
	Applied uint64     `json:"applied"`
	Image   *imageFile `json:"image"`
}

type fsmSnapshot struct {
	file    *imageFile
	applied uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(&snapshotFile{Version: 1, Applied: s.applied, Image: s.file})
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// imageFile is an image in a snapshot or an "image" record (the import of
// a log written before the quorum).
type imageFile struct {
	ClusterID      string                       `json:"cluster_id"`
	Topics         []*Topic                     `json:"topics"`
	NextProducerID int64                        `json:"next_producer_id"`
	BrokerConfigs  map[string]string            `json:"broker_configs,omitempty"`
	ClientMetrics  map[string]map[string]string `json:"client_metrics,omitempty"`
	Brokers        []*Broker                    `json:"brokers,omitempty"`
}

func (im *Image) file() *imageFile {
	return &imageFile{ClusterID: im.ClusterID, Topics: im.SortedTopics(), NextProducerID: im.NextProducerID,
		BrokerConfigs: im.BrokerConfigs, ClientMetrics: im.ClientMetrics, Brokers: im.SortedBrokers()}
}

func (f *imageFile) image() *Image {
	im := emptyImage()
	if f == nil {
		return im
	}
	im.ClusterID, im.NextProducerID = f.ClusterID, f.NextProducerID
	im.BrokerConfigs, im.ClientMetrics = f.BrokerConfigs, f.ClientMetrics
	for _, t := range f.Topics {
		intern(t.Replicas)
		im.Topics[t.Name] = t
		im.ByID[t.ID] = t
	}
	if len(f.Brokers) > 0 {
		im.Brokers = map[int32]*Broker{}
		for _, b := range f.Brokers {
			im.Brokers[b.ID] = b
		}
	}
	return im
}

func emptyImage() *Image {
	return &Image{Topics: map[string]*Topic{}, ByID: map[TopicID]*Topic{}, order: &topicOrder{}}
}

// openQuorum opens (or bootstraps) this node's Raft and waits until the
// image is current: alone, until it leads and has applied its log; in a
// cluster, until it has applied everything the leader had applied when it
// asked.
func openQuorum(s *Store, o Options) (*quorum, error) {
	dir := filepath.Join(o.DataDir, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	alone := len(o.Peers) == 0
	q := &quorum{self: raft.ServerID(strconv.Itoa(int(o.NodeID))), id: o.NodeID, alone: alone, lg: s.lg, done: make(chan struct{}),
		peerAddrs: map[raft.ServerID]string{}}
	session := o.BrokerSessionTimeout
	if session <= 0 {
		session = 9 * time.Second
	}
	q.fsm = &fsm{s: s, private: emptyImage()}
	hl := newHCLog(s.lg.With("component", "raft"), alone)
	var err error
	q.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: 5 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w (is another broker using this data dir?)", filepath.Join(dir, "raft.db"), err)
	}
	fail := func(err error) (*quorum, error) {
		q.close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fail(fmt.Errorf("metadata: snapshots: %w", err))
	}
	conf := raft.DefaultConfig()
	conf.LocalID = q.self
	conf.Logger = hl
	conf.ShutdownOnRemove = false
	conf.SnapshotThreshold = snapshotThreshold
	notify := make(chan bool, 16)
	conf.NotifyCh = notify
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		for {
			select {
			case <-q.done:
				q.follow()
				return
			case leading := <-notify:
				q.follow()
				if leading {
					q.lead(session)
				}
			}
		}
	}()
	var voters []raft.Server
	var trans raft.Transport
	if alone {
		// One voter: no one else can lead, so the election need not wait
		// out a leader that does not exist. Raft's timers keep their
		// defaults (short ones cost an idle broker CPU all the time); the
		// election is started at once below by lowering the heartbeat
		// timeout, which makes a follower check it now.
		conf.HeartbeatTimeout += time.Millisecond
		conf.ElectionTimeout = conf.HeartbeatTimeout
		addr, t := raft.NewInmemTransport(raft.ServerAddress("node-" + string(q.self)))
		trans, q.trans = t, t
		voters = []raft.Server{{ID: q.self, Address: addr}}
	} else {
		if o.HeartbeatTimeout > 0 {
			conf.HeartbeatTimeout, conf.ElectionTimeout = o.HeartbeatTimeout, o.HeartbeatTimeout
			conf.LeaderLeaseTimeout = o.HeartbeatTimeout / 2
		}
		var self *Peer
		for i, p := range o.Peers {
			voters = append(voters, raft.Server{ID: raft.ServerID(strconv.Itoa(int(p.ID))), Address: raft.ServerAddress(p.Addr)})
			q.peerAddrs[raft.ServerID(strconv.Itoa(int(p.ID)))] = p.Addr
			if p.ID == o.NodeID {
				self = &o.Peers[i]
			}
		}
		if self == nil {
			return fail(fmt.Errorf("metadata: node id %d is not among the cluster peers; give each broker its own --node-id from --cluster-peers", o.NodeID))
		}
		ln := o.Listener
		if ln == nil {
			if ln, err = net.Listen("tcp", self.Addr); err != nil {
				return fail(fmt.Errorf("metadata: cluster listener on %s: %w (the address of node %d in --cluster-peers)", self.Addr, err, o.NodeID))
			}
		}
		q.mux = newMux(ln, self.Addr, q.serveForward)
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: q.mux, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl})
		trans, q.trans = nt, nt
	}
	has, err := raft.HasExistingState(q.logs, q.logs, snaps)
	if err != nil {
		return fail(fmt.Errorf("metadata: %w", err))
	}
	if q.r, err = raft.NewRaft(conf, q.fsm, q.logs, q.logs, snaps, trans); err != nil {
		return fail(fmt.Errorf("metadata: start raft: %w", err))
	}
	if alone && has {
		recovered, err := q.stayAlone(conf, snaps, trans)
		if err != nil {
			return fail(err)
		}
		if recovered { // start again, on the new configuration
			q.fsm = &fsm{s: s, private: emptyImage()}
			if q.r, err = raft.NewRaft(conf, q.fsm, q.logs, q.logs, snaps, trans); err != nil {
				return fail(fmt.Errorf("metadata: start raft: %w", err))
			}
		}
	}
	if !has {
		if err := q.r.BootstrapCluster(raft.Configuration{Servers: voters}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fail(fmt.Errorf("metadata: bootstrap: %w", err))
		}
	}
	if alone {
		rc := raft.ReloadableConfig{TrailingLogs: conf.TrailingLogs, SnapshotInterval: conf.SnapshotInterval,
			SnapshotThreshold: conf.SnapshotThreshold, HeartbeatTimeout: conf.HeartbeatTimeout - time.Millisecond,
			ElectionTimeout: conf.ElectionTimeout}
		if err := q.r.ReloadConfig(rc); err != nil {
			return fail(fmt.Errorf("metadata: %w", err))
		}
	}
	if err := q.catchUp(); err != nil {
		return fail(err)
	}
	q.fsm.publish()
	return q, nil
}

// stayAlone makes this node the only voter of a quorum of one whose voter
// had another id (--node-id changed between starts): Raft would otherwise
// wait forever for that voter. A quorum of several voters is not taken over.
// It reports whether it changed the configuration, after stopping q.r (the
// caller starts Raft again).
func (q *quorum) stayAlone(conf *raft.Config, snaps raft.SnapshotStore, trans raft.Transport) (bool, error) {
	f := q.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, fmt.Errorf("metadata: read the quorum configuration: %w", err)
	}
	var voters []raft.ServerID
	for _, sv := range f.Configuration().Servers {
		if sv.Suffrage == raft.Voter {
			voters = append(voters, sv.ID)
		}
	}
	switch {
	case len(voters) == 1 && voters[0] == q.self:
		return false, nil
	case len(voters) > 1:
		return false, fmt.Errorf("metadata: this data dir belongs to a metadata quorum of %d voters %v; a broker alone cannot take it over", len(voters), voters)
	}
	if err := q.r.Shutdown().Error(); err != nil {
		return false, fmt.Errorf("metadata: %w", err)
	}
	c := *conf
	scratch := &fsm{s: &Store{lg: q.lg}, private: emptyImage()}
	self := raft.Configuration{Servers: []raft.Server{{ID: q.self, Address: trans.LocalAddr()}}}
	if err := raft.RecoverCluster(&c, scratch, q.logs, q.logs, snaps, trans, self); err != nil {
		return false, fmt.Errorf("metadata: make node %s the quorum's voter: %w", q.self, err)
	}
	q.lg.Info("node id changed: this broker is now its metadata quorum's only voter", "was", voters, "node_id", q.self)
	return true, nil
}

// catchUp waits until this node's image holds every change the leader had
// applied when it was asked. Without a leader it waits, saying so every
// few seconds: a broker waits for its quorum rather than refuse to start.
func (q *quorum) catchUp() error {
	start, said := time.Now(), time.Now()
	for {
		idx, err := q.barrier()
		if err == nil {
			return q.waitApplied(idx, time.Minute)
		}
		if errors.Is(err, raft.ErrRaftShutdown) {
			return err
		}
		if time.Since(said) > 5*time.Second {
			said = time.Now()
			q.lg.Warn("waiting for the metadata quorum: no leader yet; a majority of --cluster-peers must be up and reachable",
				"waited", time.Since(start).Round(time.Second), "err", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// barrier returns the index of the last change the leader has applied.
func (q *quorum) barrier() (uint64, error) {
	if q.r.State() == raft.Leader {
		return q.onLeader("barrier", nil)
	}
	return q.forward(&forwardReq{Op: "barrier"})
}

// waitApplied waits until this node's state machine applied index idx.
func (q *quorum) waitApplied(idx uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for q.fsm.applied.Load() < idx {
		if time.Now().After(deadline) {
			return fmt.Errorf("metadata: change %d not applied here after %v", idx, d)
		}
		select {
		case <-q.done:
			return raft.ErrRaftShutdown
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// applyOp runs op on rec at the leader, this node or another ("apply":
// commit rec; "register", "heartbeat": see brokers.go), and returns once
// this node's image holds what the leader had applied for it. The state
// machine's or controller's refusal is returned as it is, once this node
// has applied the entry it was about.
func (q *quorum) applyOp(op string, rec *record) error {
	data, err := jsonRecord(rec)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var idx uint64
		var err error
		if q.r.State() == raft.Leader {
			idx, err = q.onLeader(op, data)
		} else {
			idx, err = q.forward(&forwardReq{Op: op, Data: data})
		}
		var refused *refusal
		switch {
		case err == nil:
			return q.waitApplied(idx, 30*time.Second)
		case errors.As(err, &refused):
			if werr := q.waitApplied(idx, 30*time.Second); werr != nil {
				return werr
			}
			return refused.err
		}
		// Only a write known not to have been taken is retried: one that
		// lost its leader on the way may have committed.
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, errNoLeader) && !errors.Is(err, raft.ErrEnqueueTimeout) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no quorum leader took the change in 30 s (a majority of the voters must be up): %w", ErrUnavailable, err)
		}
		select {
		case <-q.done: // closing: nobody waits for this change any more
			return raft.ErrRaftShutdown
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// onLeader runs op on this node, which leads (or raft.ErrNotLeader), and
// returns the index of its entry; refusals come as *refusal.
func (q *quorum) onLeader(op string, data []byte) (uint64, error) {
	if op == "barrier" {
		if err := q.r.Barrier(10 * time.Second).Error(); err != nil {
			return 0, err
		}
		return q.fsm.applied.Load(), nil
	}
	if op == "apply" {
		f := q.r.Apply(data, 10*time.Second)
		if err := f.Error(); err != nil {
			return 0, err
		}
		if rerr, ok := f.Response().(error); ok {
			return f.Index(), &refusal{rerr}
		}
		return f.Index(), nil
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return 0, err
	}
	idx, err := q.leaderOp(op, &rec)
	if errors.Is(err, ErrDuplicateBroker) || errors.Is(err, ErrStaleBroker) {
		return idx, &refusal{err}
	}
	return idx, err
}

func jsonRecord(rec *record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode: %w", err)
	}
	return b, nil
}

func (q *quorum) close() error {
	var errs []error
	q.closeOnce.Do(func() { close(q.done) })
	if q.r != nil && q.fsm.published() {
		// The next start restores this snapshot and replays nothing,
		// where replaying thousands of entries costs tenths of a second.
		st := q.r.Stats()
		last, _ := strconv.ParseUint(st["last_log_index"], 10, 64)
		snap, _ := strconv.ParseUint(st["last_snapshot_index"], 10, 64)
		if last > snap+snapshotAtClose {
			if err := q.r.Snapshot().Error(); err != nil {
				q.lg.Debug("metadata snapshot at close not taken", "err", err)
			}
		}
	}
	if q.r != nil {
		errs = append(errs, q.r.Shutdown().Error())
	}
	q.wg.Wait()
	if q.trans != nil {
		errs = append(errs, q.trans.Close())
	}
	if q.logs != nil {
		errs = append(errs, q.logs.Close())
	}
	return errors.Join(errs...)
}

// QuorumState is this node's view of the metadata quorum (DescribeQuorum).
type QuorumState struct {
	Self     int32
	LeaderID int32 // -1: no leader known
	Term     uint64
	// CommitIndex is the quorum's high watermark as this node knows it;
	// LastIndex its own log end.
	CommitIndex, LastIndex uint64
	Voters, Observers      []int32
	// Progress is, on the leader, each other member's log end and the time
	// it was reported (by the member's broker heartbeat, so at most a
	// heartbeat interval old); empty elsewhere.
	Progress map[int32]Progress
}

// Progress is a quorum member's log end as the leader last heard it.
type Progress struct {
	LogEnd uint64
	At     time.Time
}

// Quorum returns this node's view of the metadata quorum. The Raft library
// keeps its followers' progress to itself; the leader reports the log ends
// the brokers' heartbeats carry instead.
func (s *Store) Quorum() QuorumState {
	r := s.q.r
	id, _ := strconv.Atoi(string(s.q.self))
	st := QuorumState{Self: int32(id), LeaderID: -1, Term: r.CurrentTerm(), LastIndex: r.LastIndex()}
	if _, lid := r.LeaderWithID(); lid != "" {
		if n, err := strconv.Atoi(string(lid)); err == nil {
			st.LeaderID = int32(n)
		}
	}
	st.CommitIndex, _ = strconv.ParseUint(r.Stats()["commit_index"], 10, 64)
	if c := s.q.ctl(); c != nil {
		c.mu.Lock()
		st.Progress = make(map[int32]Progress, len(c.logEnd))
		for id, end := range c.logEnd {
			st.Progress[id] = Progress{LogEnd: end, At: c.lastSeen[id]}
		}
		c.mu.Unlock()
	}
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			n, err := strconv.Atoi(string(sv.ID))
			if err != nil {
				continue
			}
			if sv.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, int32(n))
			} else {
				st.Observers = append(st.Observers, int32(n))
			}
		}
	}
	return st
}
