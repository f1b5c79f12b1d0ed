// Package metadata holds the cluster's metadata image (cluster id, topics with
// their ids, partition counts and configs, the producer-id high-water mark,
// dynamic broker configs, client metrics subscriptions) and keeps it in a
// metadata quorum: a Raft log (github.com/hashicorp/raft, stored with
// raft-boltdb/v2 in `<data-dir>/__cluster_metadata-0/raft.db`) whose state
// machine is the image.
//
// Format: each change is one Raft command entry holding a JSON object
// {"type": ..., ...} (see record); a snapshot (`snapshots/`) is the whole
// image as JSON at a log index. A change is acknowledged once a majority of
// the voters have it on disk (fsynced by BoltDB) and this node has applied
// it, so an acknowledged CreateTopics survives kill -9 of any minority.
//
// A broker alone is a quorum of one voter with no network (elected in
// milliseconds at start). With peers (Options.Peers) a node forwards its
// changes to the leader over the cluster port; the leader's state machine
// checks each change where it is applied, in log order (a topic created
// twice at once is refused once).
//
// The image is immutable: readers load it with Image() without locks; the
// state machine builds a modified copy and swaps it in. The copy clones only
// the maps the change touches: a topic change copies the topic maps
// (O(topics) per change, as readers index plain maps), a producer id
// reservation or a config change copies none. Replay at start applies every
// entry to one private image in place (linear in the log) and publishes it
// once caught up.
//
// A data dir written before the quorum has its metadata in a segment log,
// `<data-dir>/__cluster_metadata/`; the first start imports it as one entry
// and then removes it (see migrateLegacy).
package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// TopicID is a Kafka topic UUID.
type TopicID [16]byte

// String is Kafka's base64url form.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Topic is one topic's metadata.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // explicitly set topic configs only
	Internal   bool
	// Replicas are each partition's replicas, the preferred leader first
	// (placement.go); nil in topics written before placement until a
	// broker registers. Shared between images: never modify.
	Replicas [][]int32 `json:",omitempty"`
}

// Image is an immutable snapshot of all metadata.
type Image struct {
	ClusterID      string
	Topics         map[string]*Topic
	ByID           map[TopicID]*Topic
	NextProducerID int64 // ids below this may have been handed out
	// BrokerConfigs are the dynamic broker configs set at runtime (see
	// BrokerConfigDefs); they override the static flag/env/file values.
	BrokerConfigs map[string]string
	// ClientMetrics are the KIP-714 client metrics subscriptions
	// (CLIENT_METRICS config resources): name -> configs as set.
	ClientMetrics map[string]map[string]string
	// Brokers are the registered brokers by node id (brokers.go).
	Brokers map[int32]*Broker

	// seq is the log index of the entry that made this image, base that of
	// the image it was derived from, and touched the topic that entry
	// changed ("" if none, or if it changed several): TopicsChangedSince.
	seq, base uint64
	touched   string

	// order is SortedTopics, built on first use and shared by every image
	// with the same Topics map (a producer id reservation or a broker
	// config change does not make the next Metadata request sort again).
	order *topicOrder
}

type topicOrder struct {
	once   sync.Once
	sorted []*Topic
}

// SortedTopics returns topics by name. The slice is built once per topic
// set and shared by every caller (Metadata and DescribeTopicPartitions ask
// for it per request; sorting 100k topics each time cost more than the
// answer): it must not be modified.
func (im *Image) SortedTopics() []*Topic {
	if im.order == nil { // an Image not made by a Store
		return sortTopics(im.Topics)
	}
	im.order.once.Do(func() { im.order.sorted = sortTopics(im.Topics) })
	return im.order.sorted
}

func sortTopics(topics map[string]*Topic) []*Topic {
	out := make([]*Topic, 0, len(topics))
	for _, t := range topics {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
	return out[:len(out):len(out)]
}

// record is the persisted form of one change.
type record struct {
	Type       string            `json:"type"` // cluster, topic, delete_topic, partitions, producer_ids, broker_configs
	ClusterID  string            `json:"cluster_id,omitempty"`
	Name       string            `json:"name,omitempty"`
	ID         *TopicID          `json:"id,omitempty"`
	Partitions int32             `json:"partitions,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
	NextPID    int64             `json:"next_producer_id,omitempty"`
	// FromPID makes a producer_ids record a block allocation: it applies
	// only while the image's next producer id is still FromPID.
	FromPID *int64 `json:"from_producer_id,omitempty"`
	// Internal marks a topic the broker keeps for itself
	// (__consumer_offsets, __transaction_state).
	Internal bool `json:"internal,omitempty"`
	// Create marks a "topic" record that makes a new topic (refused if the
	// name exists); without it the record replaces the configs of the
	// topic with that name and id.
	Create bool `json:"create,omitempty"`
	// Replicas place a new topic's partitions ("topic" with Create) or the
	// partitions a "partitions" record adds.
	Replicas [][]int32 `json:"replicas,omitempty"`
	// Image is the whole image of an "image" record: the import of a
	// metadata log written before the quorum.
	Image *imageFile `json:"image,omitempty"`
	// Broker registrations (brokers.go): the broker of a register_broker
	// record; the node id and broker epoch of a fence, unfence or
	// heartbeat; Alone marks the registration of a quorum of one, which
	// drops every other broker (a node id changed between starts).
	Broker *Broker `json:"broker,omitempty"`
	NodeID int32   `json:"node_id,omitempty"`
	Epoch  int64   `json:"epoch,omitempty"`
	Alone  bool    `json:"alone,omitempty"`
	// LogEnd is a heartbeat's sender's Raft log end: the controller
	// reports voters' progress from it (DescribeQuorum).
	LogEnd uint64 `json:"log_end,omitempty"`

	index uint64 // the entry's log index, set when applied
}

// Errors returned by Store changes.
var (
	ErrTopicExists  = errors.New("metadata: topic already exists")
	ErrNoTopic      = errors.New("metadata: unknown topic")
	ErrPartitionsLE = errors.New("metadata: new partition count must exceed the current one")
	// ErrUnavailable: the change could not be made now (no quorum leader
	// took it, or the leader was lost before it answered, so it may or may
	// not have been taken); retrying later is right (Kafka answers
	// REQUEST_TIMED_OUT).
	ErrUnavailable = errors.New("metadata: quorum unavailable")
)

// Store owns this node's view of the metadata quorum and the current image.
type Store struct {
	mu    sync.Mutex // serialises this node's changes
	q     *quorum
	image atomic.Pointer[Image]
	lg    *slog.Logger
	// changed is signalled (without blocking, coalescing) after every new
	// image is published: Changes.
	changed chan struct{}
	// hbStop ends the heartbeats Register started; hbDone is closed when
	// they have (Deregister).
	hbStop, hbDone chan struct{}
}

// Changes is signalled after the image changes (coalesced: one signal may
// stand for several changes; read Image for the latest). A broker in a
// cluster follows topics other brokers create, grow, reconfigure or delete.
func (s *Store) Changes() <-chan struct{} { return s.changed }

func (s *Store) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Open opens the metadata of a broker alone: a quorum of one voter.
func Open(dataDir string, lg *slog.Logger) (*Store, error) {
	return OpenWith(Options{DataDir: dataDir, Logger: lg, NodeID: 1})
}

// OpenWith opens (or bootstraps) this node's part of the metadata quorum
// and returns once its image is current. A new cluster gets a fresh random
// cluster id; a data dir written before the quorum has its metadata log
// imported once (see migrateLegacy).
func OpenWith(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{lg: o.Logger, changed: make(chan struct{}, 1)}
	q, err := openQuorum(s, o)
	if err != nil {
		return nil, err
	}
	s.q = q
	if err := s.migrateLegacy(o.DataDir); err != nil {
		s.Close()
		return nil, err
	}
	if s.Image().ClusterID == "" {
		var b [16]byte
		rand.Read(b[:])
		if err := s.commit(&record{Type: "cluster", ClusterID: base64.RawURLEncoding.EncodeToString(b[:])}); err != nil && !errors.Is(err, errClusterSet) {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops this node's part of the quorum; every change it
// acknowledged is already on disk.
func (s *Store) Close() error { return s.q.close() }

// Image returns the current snapshot; never modify it.
func (s *Store) Image() *Image { return s.image.Load() }

// commit has the quorum's leader append rec and returns once it is applied
// to this node's image, or the state machine's refusal (ErrTopicExists,
// ErrNoTopic, ErrPartitionsLE): changes from several nodes are checked
// where they are applied, in log order.
func (s *Store) commit(rec *record) error { return s.q.applyOp("apply", rec) }

// errBadRecord refuses a record that could not have been written by a
// broker: the state machine never applies it (nor panics on it).
var errBadRecord = errors.New("metadata: malformed record")

// check says whether rec applies to im, the same on every node.
func (im *Image) check(rec *record) error {
	switch rec.Type {
	case "topic", "delete_topic", "partitions":
		if rec.Name == "" || (rec.Type == "topic" && (rec.ID == nil || rec.Partitions < 1)) {
			return errBadRecord
		}
		if rec.Type == "topic" && rec.Create && !wellFormed(rec.Replicas, rec.Partitions) {
			return errBadRecord
		}
	case "image":
		if rec.Image == nil || rec.Image.ClusterID == "" {
			return errBadRecord
		}
		names, ids := map[string]bool{}, map[TopicID]bool{}
		for _, t := range rec.Image.Topics {
			if t == nil || t.Name == "" || t.Partitions < 1 || names[t.Name] || ids[t.ID] || !wellFormed(t.Replicas, t.Partitions) {
				return errBadRecord
			}
			names[t.Name], ids[t.ID] = true, true
		}
		for _, b := range rec.Image.Brokers {
			if b == nil {
				return errBadRecord
			}
		}
	case "register_broker":
		if rec.Broker == nil {
			return errBadRecord
		}
	}
	switch rec.Type {
	case "fence_broker", "unfence_broker":
		return im.checkBroker(rec)
	case "cluster", "image":
		if im.ClusterID != "" {
			return errClusterSet
		}
	case "topic":
		t, ok := im.Topics[rec.Name]
		switch {
		case rec.Create && ok:
			return ErrTopicExists
		case rec.Create && im.ByID[*rec.ID] != nil:
			return errBadRecord // another topic has this id
		case !rec.Create && (!ok || rec.ID == nil || t.ID != *rec.ID):
			return ErrNoTopic
		}
	case "delete_topic":
		t, ok := im.Topics[rec.Name]
		if !ok || (rec.ID != nil && t.ID != *rec.ID) {
			return ErrNoTopic
		}
	case "producer_ids":
		if rec.FromPID != nil && *rec.FromPID != im.NextProducerID {
			return errPIDConflict
		}
	case "partitions":
		t, ok := im.Topics[rec.Name]
		if !ok {
			return ErrNoTopic
		}
		if rec.Partitions <= t.Partitions {
			return ErrPartitionsLE
		}
		if !wellFormed(rec.Replicas, rec.Partitions-t.Partitions) {
			return errBadRecord
		}
	}
	return nil
}

// copyFor returns a copy of im that rec can be applied to: the maps rec
// changes are cloned, the others shared. A topic change costs a copy of the
// topic maps (O(topics), as every reader holds a plain map); a producer id
// reservation or a config change costs nothing per topic.
func (im *Image) copyFor(rec *record) *Image {
	next := *im
	switch rec.Type {
	case "image":
		return emptyImage() // replaced whole
	case "topic", "delete_topic", "partitions":
		next.Topics, next.ByID = maps.Clone(im.Topics), maps.Clone(im.ByID)
		next.order = &topicOrder{}
	case "client_metrics":
		next.ClientMetrics = maps.Clone(im.ClientMetrics)
	case "register_broker", "fence_broker", "unfence_broker":
		next.Brokers = maps.Clone(im.Brokers)
		if rec.Type == "register_broker" && im.placesOnRegister(rec.Broker, rec.Alone) {
			next.Topics, next.ByID = maps.Clone(im.Topics), maps.Clone(im.ByID)
			next.order = &topicOrder{}
		}
	}
	return &next
}

// apply applies rec to im in place: only to an image no reader holds yet
// (Open's, or copyFor's result). Unknown record types are skipped so an
// older binary can read a newer log's known parts.
func (im *Image) apply(rec *record) {
	switch rec.Type {
	case "register_broker", "fence_broker", "unfence_broker":
		im.applyBroker(rec)
	case "cluster":
		im.ClusterID = rec.ClusterID
	case "image":
		*im = *rec.Image.image()
	case "topic":
		if old, ok := im.Topics[rec.Name]; ok && !rec.Create && rec.ID != nil && old.ID == *rec.ID {
			t := *old // new configs; the partition count stays what it is now
			t.Configs = rec.Configs
			im.Topics[t.Name] = &t
			im.ByID[t.ID] = &t
			return
		}
		t := &Topic{Name: rec.Name, Partitions: rec.Partitions, Configs: rec.Configs, Internal: rec.Internal, Replicas: rec.Replicas}
		intern(t.Replicas)
		if rec.ID != nil {
			t.ID = *rec.ID
		}
		if old, ok := im.Topics[t.Name]; ok {
			delete(im.ByID, old.ID)
		}
		im.Topics[t.Name] = t
		im.ByID[t.ID] = t
	case "delete_topic":
		if old, ok := im.Topics[rec.Name]; ok {
			delete(im.ByID, old.ID)
			delete(im.Topics, rec.Name)
		}
	case "partitions":
		if old, ok := im.Topics[rec.Name]; ok {
			t := *old // a reader of an older image may hold old
			if t.Placed() && rec.Replicas != nil {
				t.Replicas = slices.Concat(t.Replicas, rec.Replicas)
				intern(t.Replicas)
			} else {
				t.Replicas = nil // placed at the next registration
			}
			t.Partitions = rec.Partitions
			im.Topics[t.Name] = &t
			im.ByID[t.ID] = &t
		}
	case "broker_configs":
		im.BrokerConfigs = rec.Configs
	case "producer_ids":
		if rec.NextPID > im.NextProducerID {
			im.NextProducerID = rec.NextPID
		}
	case "client_metrics":
		if len(rec.Configs) == 0 {
			delete(im.ClientMetrics, rec.Name)
		} else {
			if im.ClientMetrics == nil {
				im.ClientMetrics = map[string]map[string]string{}
			}
			im.ClientMetrics[rec.Name] = rec.Configs
		}
	}
}

// CreateTopic persists a new topic with one replica per partition,
// placed over the live brokers.
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string) (*Topic, error) {
	return s.Create(TopicSpec{Name: name, Partitions: partitions, Configs: configs})
}

// CreateInternalTopic persists a topic the broker keeps for itself (Kafka's
// internal topics: Metadata lists them with is_internal set, clients may
// read but not write or delete them).
func (s *Store) CreateInternalTopic(name string, partitions int32, configs map[string]string) (*Topic, error) {
	return s.Create(TopicSpec{Name: name, Partitions: partitions, Configs: configs, Internal: true})
}

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int32
	// ReplicationFactor is the replicas per partition (1 if 0), placed by
	// Image.Place; Replicas, if set, place them explicitly instead (and
	// then give the partition count).
	ReplicationFactor int16
	Replicas          [][]int32
	Configs           map[string]string
	Internal          bool
}

// Create persists a new topic: ErrTopicExists, ErrReplicationFactor and
// ErrReplicaAssignment refuse it.
func (s *Store) Create(spec TopicSpec) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.Image()
	if _, ok := im.Topics[spec.Name]; ok {
		return nil, ErrTopicExists
	}
	reps := spec.Replicas
	if reps != nil {
		if err := im.CheckAssignment(reps); err != nil {
			return nil, err
		}
		spec.Partitions = int32(len(reps))
	} else {
		var err error
		if reps, err = im.Place(spec.Partitions, max(spec.ReplicationFactor, 1), s.q.id); err != nil {
			return nil, err
		}
	}
	var id TopicID
	rand.Read(id[:])
	if err := s.commit(&record{Type: "topic", Create: true, Name: spec.Name, ID: &id, Partitions: spec.Partitions,
		Configs: spec.Configs, Internal: spec.Internal, Replicas: reps}); err != nil {
		return nil, err
	}
	return s.Image().Topics[spec.Name], nil
}

// DeleteTopic persists a topic's removal.
func (s *Store) DeleteTopic(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.Image().Topics[name]
	if !ok {
		return ErrNoTopic
	}
	id := t.ID
	return s.commit(&record{Type: "delete_topic", Name: name, ID: &id})
}

// SetPartitions grows a topic to n partitions, the new ones placed with
// the topic's replication factor.
func (s *Store) SetPartitions(name string, n int32) error { return s.AddPartitions(name, n, nil) }

// AddPartitions grows a topic to n partitions with the replicas reps for the
// new ones (nil: placed over the live brokers).
func (s *Store) AddPartitions(name string, n int32, reps [][]int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.Image()
	t, ok := im.Topics[name]
	if !ok {
		return ErrNoTopic
	}
	if n <= t.Partitions {
		return ErrPartitionsLE
	}
	if reps != nil {
		if int32(len(reps)) != n-t.Partitions {
			return fmt.Errorf("%w: %d assignments for %d new partitions", ErrReplicaAssignment, len(reps), n-t.Partitions)
		}
		if err := im.CheckAssignment(reps); err != nil {
			return err
		}
	} else {
		rf := int16(1)
		if t.Placed() && len(t.Replicas) > 0 {
			rf = int16(len(t.Replicas[0]))
		}
		var err error
		if reps, err = im.Place(n-t.Partitions, rf, s.q.id); err != nil {
			return err
		}
	}
	return s.commit(&record{Type: "partitions", Name: name, Partitions: n, Replicas: reps})
}

// SetTopicConfigs replaces a topic's explicit configs.
func (s *Store) SetTopicConfigs(name string, configs map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.Image().Topics[name]
	if !ok {
		return ErrNoTopic
	}
	id := t.ID
	return s.commit(&record{Type: "topic", Name: name, ID: &id, Partitions: t.Partitions, Configs: configs, Internal: t.Internal})
}

// errPIDConflict refuses a producer id block allocated from an image
// another broker's allocation has overtaken: the allocator retries.
var errPIDConflict = errors.New("metadata: producer id block taken by another broker")

// AllocateProducerIDs hands this broker the block of n producer ids that
// starts at the returned id: no other broker, and no later start of any,
// gets an id in it (Kafka's AllocateProducerIds).
func (s *Store) AllocateProducerIDs(n int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for try := 0; ; try++ {
		from := s.Image().NextProducerID
		err := s.commit(&record{Type: "producer_ids", FromPID: &from, NextPID: from + n})
		if errors.Is(err, errPIDConflict) && try < 100 {
			continue
		}
		if err != nil {
			return -1, err
		}
		return from, nil
	}
}

// ReserveProducerIDs persists that ids below upTo may be in use, so a restart
// never hands one out twice.
func (s *Store) ReserveProducerIDs(upTo int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if upTo <= s.Image().NextProducerID {
		return nil
	}
	return s.commit(&record{Type: "producer_ids", NextPID: upTo})
}

// SetBrokerConfigs replaces the dynamic broker configs (full replace: keys
// not in configs return to their static values). Every key must be a dynamic
// broker config and every value valid.
func (s *Store) SetBrokerConfigs(configs map[string]string) error {
	if err := ValidateBrokerConfigs(configs); err != nil {
		return err
	}
	if len(configs) == 0 {
		configs = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(&record{Type: "broker_configs", Configs: maps.Clone(configs)})
}

// SetClientMetrics replaces the configs of the client metrics subscription
// name; empty configs delete it (as Kafka removes a CLIENT_METRICS resource
// whose last config is deleted). The caller validates the configs.
func (s *Store) SetClientMetrics(name string, configs map[string]string) error {
	if name == "" {
		return errors.New("metadata: client metrics subscription name must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Image().ClientMetrics[name]; !ok && len(configs) == 0 {
		return nil
	}
	return s.commit(&record{Type: "client_metrics", Name: name, Configs: maps.Clone(configs)})
}

// TopicsChangedSince returns the topics whose state differs between prev and
// im when im follows prev by one change of one topic (or none), so a
// follower of the image updates just those; ok is false when it cannot
// tell (several changes between them, or a change of many topics): compare
// everything then.
func (im *Image) TopicsChangedSince(prev *Image) (names []string, ok bool) {
	switch {
	case prev == nil:
		return nil, false
	case SameTopics(prev, im):
		return nil, true
	case im.base == prev.seq && im.touched != "":
		return []string{im.touched}, true
	}
	return nil, false
}

// SameTopics reports whether a and b have the same topics (b derived from a
// by changes that touched no topic, or the same image): a follower of the
// image skips its per-topic work then.
func SameTopics(a, b *Image) bool { return a.order == b.order }
