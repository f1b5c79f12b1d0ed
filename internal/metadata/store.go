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
// (serialised by Store.mu) build a modified copy and swap it in. This is the
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

	sortedOnce sync.Once
	sorted     []*Topic // SortedTopics, built on first use
}

// SortedTopics returns topics by name. The slice is built once per image
// and shared by every caller (Metadata and DescribeTopicPartitions ask for it
// per request; sorting 100k topics each time cost more than the answer): it
// must not be modified.
func (im *Image) SortedTopics() []*Topic {
	im.sortedOnce.Do(func() {
		out := make([]*Topic, 0, len(im.Topics))
		for _, t := range im.Topics {
			out = append(out, t)
		}
		slices.SortFunc(out, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
		im.sorted = out[:len(out):len(out)]
	})
	return im.sorted
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
	im := &Image{Topics: map[string]*Topic{}, ByID: map[TopicID]*Topic{}}
	err = storage.ReplayRecords(l, -1, nil, func(off int64, r *kmsg.Record) error {
		var rec record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return fmt.Errorf("metadata: record at offset %d: %w", off, err)
		}
		im = apply(im, &rec)
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
	s.image.Store(apply(s.image.Load(), rec))
	return nil
}

// apply returns a copy of im with rec applied. Unknown record types are
// skipped so an older binary can read a newer log's known parts.
func apply(im *Image, rec *record) *Image {
	next := &Image{ClusterID: im.ClusterID, Topics: maps.Clone(im.Topics), ByID: maps.Clone(im.ByID), NextProducerID: im.NextProducerID, BrokerConfigs: im.BrokerConfigs}
	next.ClientMetrics = im.ClientMetrics
	switch rec.Type {
	case "cluster":
		next.ClusterID = rec.ClusterID
	case "topic":
		t := &Topic{Name: rec.Name, Partitions: rec.Partitions, Configs: rec.Configs, Internal: rec.Internal}
		if rec.ID != nil {
			t.ID = *rec.ID
		}
		if old, ok := next.Topics[t.Name]; ok {
			delete(next.ByID, old.ID)
		}
		next.Topics[t.Name] = t
		next.ByID[t.ID] = t
	case "delete_topic":
		if old, ok := next.Topics[rec.Name]; ok {
			delete(next.ByID, old.ID)
			delete(next.Topics, rec.Name)
		}
	case "partitions":
		if old, ok := next.Topics[rec.Name]; ok {
			t := *old
			t.Partitions = rec.Partitions
			next.Topics[t.Name] = &t
			next.ByID[t.ID] = &t
		}
	case "broker_configs":
		next.BrokerConfigs = rec.Configs
	case "producer_ids":
		if rec.NextPID > next.NextProducerID {
			next.NextProducerID = rec.NextPID
		}
	case "client_metrics":
		next.ClientMetrics = maps.Clone(im.ClientMetrics)
		if len(rec.Configs) == 0 {
			delete(next.ClientMetrics, rec.Name)
		} else {
			if next.ClientMetrics == nil {
				next.ClientMetrics = map[string]map[string]string{}
			}
			next.ClientMetrics[rec.Name] = rec.Configs
		}
	}
	return next
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
