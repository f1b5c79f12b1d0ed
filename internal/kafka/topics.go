package kafka

import (
	"errors"
	"fmt"
	"os"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

const maxTopicNameLen = 249

var (
	errInvalidTopic      = errors.New("kafka: invalid topic name")
	errInvalidPartitions = errors.New("kafka: invalid partition count")
	errInvalidConfig     = errors.New("kafka: invalid topic config")
	errInternalTopic     = errors.New("kafka: internal topics cannot be changed")
)

// validateTopicName applies Kafka's rules: 1-249 characters of [a-zA-Z0-9._-],
// not "." or "..".
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicNameLen {
		return fmt.Errorf("%w %q: must be 1-%d characters and not '.' or '..'", errInvalidTopic, name, maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only ASCII letters, digits, '.', '_' and '-' are allowed", errInvalidTopic, name)
		}
	}
	return nil
}

// maxPartitionsPerTopic bounds CreateTopics/CreatePartitions so one request
// cannot exhaust file descriptors.
const maxPartitionsPerTopic = 10000

// createTopic persists a topic and opens its partitions. Holding b.mu for
// the whole operation keeps a concurrent Metadata from seeing the topic in
// the image but not in b.topics.
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string) (*metadata.Topic, error) {
	return b.createTopicWith(name, partitions, b.opts.DefaultReplicationFactor, nil, configs)
}

// createTopicWith is createTopic with explicit replicas (nil: placed over
// the live brokers). Only the partitions this broker leads get
// directories here; the other brokers make theirs when the topic reaches
// them (syncTopics).
func (b *Broker) createTopicWith(name string, partitions int32, rf int16, reps [][]int32, configs map[string]string) (*metadata.Topic, error) {
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if partitions < 1 || partitions > maxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: %d (must be 1-%d)", errInvalidPartitions, partitions, maxPartitionsPerTopic)
	}
	if err := metadata.ValidateTopicConfigs(configs); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.meta.Create(metadata.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: max(rf, 1), Replicas: reps, Configs: configs})
	if err != nil {
		return nil, err
	}
	ts := &topicState{meta: t}
	b.addParts(ts)
	b.topics[name] = ts
	b.ownChange(name)
	if err := b.createDirs(b.hostedParts(ts, 0)); err != nil {
		// The topic is recorded; its partitions are retried on use (and
		// created by their first open) once the cause is gone.
		b.log.Error("could not create partition directories of new topic", "topic", name, "err", err)
		return nil, fmt.Errorf("kafka: topic %s recorded but its partitions could not be created (retried on use): %w", name, err)
	}
	b.log.Info("topic created", "topic", name, "partitions", partitions, "id", t.ID.String())
	return t, nil
}

// deleteTopic removes a topic: the metadata record first (durable), then the
// files. A crash in between leaves directories that New removes at start.
func (b *Broker) deleteTopic(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.meta.Image().Topics[name]
	if !ok {
		return metadata.ErrNoTopic
	}
	if t.Internal {
		return errInternalTopic
	}
	if err := b.meta.DeleteTopic(name); err != nil {
		return err
	}
	ts := b.topics[name]
	delete(b.topics, name)
	b.ownChange(name)
	if ts != nil {
		for _, p := range ts.parts {
			b.repl.forget(p)
			if err := p.Delete(); err != nil {
				b.log.Warn("could not remove partition files", "topic", name, "partition", p.Index(), "err", err)
			}
		}
	}
	for i := int32(0); i < t.Partitions; i++ { // partitions that failed to open
		os.RemoveAll(partitionDir(b.opts.DataDir, name, i))
	}
	b.log.Info("topic deleted", "topic", name)
	return nil
}

// createPartitions grows a topic to n partitions.
func (b *Broker) createPartitions(name string, n int32, reps [][]int32) error {
	if n > maxPartitionsPerTopic {
		return fmt.Errorf("%w: %d (at most %d)", errInvalidPartitions, n, maxPartitionsPerTopic)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.meta.Image().Topics[name]; t != nil && t.Internal {
		return errInternalTopic
	}
	if err := b.meta.AddPartitions(name, n, reps); err != nil {
		return err
	}
	t := b.meta.Image().Topics[name]
	old := b.topics[name]
	ts := &topicState{meta: t, parts: append([]*partition.Partition(nil), old.parts...)}
	b.addParts(ts)
	b.topics[name] = ts
	b.ownChange(name)
	if err := b.createDirs(b.hostedParts(ts, len(old.parts))); err != nil {
		b.log.Error("could not create new partition directories", "topic", name, "err", err)
		return fmt.Errorf("kafka: partitions of %s recorded but could not be created (retried on use): %w", name, err)
	}
	return nil
}

// createDirs makes the directories of new partitions (each opens on first
// use) with their metadata and empty first segment, and fsyncs the data
// directory once for all of them, so creating thousands of partitions costs
// a mkdir and two small file creations each. The files inside are made
// durable by the partition's first sync (a new log's first Sync fsyncs its
// directory; a checkpoint's syncfs covers it).
func (b *Broker) createDirs(parts []*partition.Partition) error {
	for _, p := range parts {
		if err := p.Create(); err != nil {
			return err
		}
	}
	return storage.SyncDir(b.opts.DataDir)
}

// createErrCode maps topic-creation errors to Kafka codes.
func createErrCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, errInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, errInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, errInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, metadata.ErrNoTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrPartitionsLE):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, errInternalTopic):
		return kerr.TopicAuthorizationFailed.Code
	case errors.Is(err, metadata.ErrReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, metadata.ErrReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, metadata.ErrUnavailable):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

// persistErrCode is the code of a failed metadata write of configs:
// REQUEST_TIMED_OUT (retriable) when the quorum could not take it now,
// KAFKA_STORAGE_ERROR otherwise.
func persistErrCode(err error) int16 {
	if errors.Is(err, metadata.ErrUnavailable) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.KafkaStorageError.Code
}
