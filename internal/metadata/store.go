// Package metadata holds the cluster's metadata image (cluster id, topics with
// their ids, partition counts and configs, the producer-id high-water mark)
// and persists every change as a record in an internal log,
// `<data-dir>/__cluster_metadata/`, written with the same storage code as
// partition data.
//
// Format: each change is one v2 record batch holding one record whose value is
// a JSON object {"type": ..., ...} (see record). On start the log is replayed
// from the beginning into an empty image. A change is fsynced before it is
// applied and acknowledged, so an acknowledged CreateTopics survives kill -9.
//
// The image is immutable: readers load it with Image() without locks; writers
// (serialised by Store.mu) build a modified copy and swap it in. The copy
// clones only the maps the change touches: a topic change copies the topic
// maps (O(topics) per change, as readers index plain maps), a producer id
// reservation or a config change copies none. Replay at start applies every
// record to one private image in place (linear in the log). This is the
// seam where a Raft-replicated metadata log will later plug in: records are
// produced by the leader and applied identically on every node.
package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	// Internal marks a topic the broker keeps for itself
	// (__consumer_offsets, __transaction_state).
	Internal bool `json:"internal,omitempty"`
}

// Errors returned by Store changes.
var (
	ErrTopicExists  = errors.New("metadata: topic already exists")
	ErrNoTopic      = errors.New("metadata: unknown topic")
	ErrPartitionsLE = errors.New("metadata: new partition count must exceed the current one")
)

// Store owns the metadata log and the current image.
type Store struct {
	mu    sync.Mutex // serialises changes
	log   *storage.Log
	image atomic.Pointer[Image]
	lg    *slog.Logger
}

// Open replays the metadata log under dataDir and returns the store. A new
// data dir gets a fresh random cluster id.
func Open(dataDir string, lg *slog.Logger) (*Store, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	l, err := storage.Open(filepath.Join(dataDir, "__cluster_metadata"), storage.Options{SegmentBytes: 64 << 20, Logger: lg})
	if err != nil {
		return nil, fmt.Errorf("metadata: open log: %w", err)
	}
	s := &Store{log: l, lg: lg}
	// The image is private until stored below, so replay changes it in
	// place: linear in the log, where a copy per record was quadratic in
	// the number of topics (10,000 topics took seconds to open).
	im := &Image{Topics: map[string]*Topic{}, ByID: map[TopicID]*Topic{}, order: &topicOrder{}}
	err = storage.ReplayRecords(l, -1, nil, func(off int64, r *kmsg.Record) error {
		var rec record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return fmt.Errorf("metadata: record at offset %d: %w", off, err)
		}
		im.apply(&rec)
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	s.image.Store(im)
	if im.ClusterID == "" {
		var b [16]byte
		rand.Read(b[:])
		if err := s.commit(&record{Type: "cluster", ClusterID: base64.RawURLEncoding.EncodeToString(b[:])}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close syncs and closes the log.
func (s *Store) Close() error { return s.log.Close() }

// Image returns the current snapshot; never modify it.
func (s *Store) Image() *Image { return s.image.Load() }

// commit appends rec, fsyncs it and applies it. Caller holds s.mu or is Open.
func (s *Store) commit(rec *record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("metadata: encode: %w", err)
	}
	batch := storage.EncodeBatch(time.Now().UnixMilli(), []kmsg.Record{{Value: v}})
	if _, err := s.log.Append(batch); err != nil {
		return fmt.Errorf("metadata: append: %w", err)
	}
	if _, err := s.log.Sync(); err != nil {
		return fmt.Errorf("metadata: sync: %w", err)
	}
	next := s.image.Load().copyFor(rec)
	next.apply(rec)
	s.image.Store(next)
	return nil
}

// copyFor returns a copy of im that rec can be applied to: the maps rec
// changes are cloned, the others shared. A topic change costs a copy of the
// topic maps (O(topics), as every reader holds a plain map); a producer id
// reservation or a config change costs nothing per topic.
func (im *Image) copyFor(rec *record) *Image {
	next := *im
	switch rec.Type {
	case "topic", "delete_topic", "partitions":
		next.Topics, next.ByID = maps.Clone(im.Topics), maps.Clone(im.ByID)
		next.order = &topicOrder{}
	case "client_metrics":
		next.ClientMetrics = maps.Clone(im.ClientMetrics)
	}
	return &next
}

// apply applies rec to im in place: only to an image no reader holds yet
// (Open's, or copyFor's result). Unknown record types are skipped so an
// older binary can read a newer log's known parts.
func (im *Image) apply(rec *record) {
	switch rec.Type {
	case "cluster":
		im.ClusterID = rec.ClusterID
	case "topic":
		t := &Topic{Name: rec.Name, Partitions: rec.Partitions, Configs: rec.Configs, Internal: rec.Internal}
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

// CreateTopic persists a new topic.
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string) (*Topic, error) {
	return s.createTopic(name, partitions, configs, false)
}

// CreateInternalTopic persists a topic the broker keeps for itself (Kafka's
// internal topics: Metadata lists them with is_internal set, clients may
// read but not write or delete them).
func (s *Store) CreateInternalTopic(name string, partitions int32, configs map[string]string) (*Topic, error) {
	return s.createTopic(name, partitions, configs, true)
}

func (s *Store) createTopic(name string, partitions int32, configs map[string]string, internal bool) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Image().Topics[name]; ok {
		return nil, ErrTopicExists
	}
	var id TopicID
	rand.Read(id[:])
	if err := s.commit(&record{Type: "topic", Name: name, ID: &id, Partitions: partitions, Configs: configs, Internal: internal}); err != nil {
		return nil, err
	}
	return s.Image().Topics[name], nil
}

// DeleteTopic persists a topic's removal.
func (s *Store) DeleteTopic(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Image().Topics[name]; !ok {
		return ErrNoTopic
	}
	return s.commit(&record{Type: "delete_topic", Name: name})
}

// SetPartitions grows a topic to n partitions.
func (s *Store) SetPartitions(name string, n int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.Image().Topics[name]
	if !ok {
		return ErrNoTopic
	}
	if n <= t.Partitions {
		return ErrPartitionsLE
	}
	return s.commit(&record{Type: "partitions", Name: name, Partitions: n})
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
