package kafka

// Behavior:
//
//   - Lists the registered, unfenced brokers (this one always) and each
//     partition's leader and replicas as the metadata image places them
//     (cluster.go); ISR = replicas until the in-sync set is in the metadata log
//     (replication.go). A partition whose leader is fenced or gone answers
//     LEADER_NOT_AVAILABLE with leader -1. The controller is this broker.
//   - A null topic list (v1+; an empty list at v0) means all topics. Internal
//     topics are listed with IsInternal set.
//   - Unknown topics are auto-created (num.partitions partitions) when the
//     broker has auto.create.topics.enable and the request allows it:
//     AllowAutoTopicCreation at v4+, always at v0-v3 which lack the field
//     (kafka-python relies on this). Otherwise UNKNOWN_TOPIC_OR_PARTITION,
//     or INVALID_TOPIC_EXCEPTION for an illegal name.
//   - v10+ topics may be named by id; an unknown id answers UNKNOWN_TOPIC_ID.
//
// Version notes:
//   - all of v0-v13 are served; ClusterAuthorizedOperations (v8-v10) and
//     TopicAuthorizedOperations report "all" until ACLs exist.

import (
	"errors"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// allOperations is the authorized-operations bitfield for every ACL
// operation (bits 2..14), reported while authorization is off.
const allOperations = int32(0x7ffc)

func handleMetadata(b *Broker, r *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	im := b.meta.Image()
	resp.ClusterID = kmsg.StringPtr(im.ClusterID)
	resp.ControllerID = b.opts.NodeID
	for _, e := range b.brokerList(im, false) {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, br)
	}
	if r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = allOperations
	}

	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	nodes := []int32{b.opts.NodeID} // replicas = ISR for every partition, shared
	if all {
		sorted := im.SortedTopics()
		resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(sorted))
		for _, t := range sorted {
			resp.Topics = append(resp.Topics, b.topicMetadata(im, t, r, nodes))
		}
		return resp, nil
	}
	settings := b.settings()
	autoCreate := settings.autoCreate && (r.Version < 4 || r.AllowAutoTopicCreation)
	for _, rt := range r.Topics {
		var t *metadata.Topic
		var name string
		if rt.Topic != nil && *rt.Topic != "" {
			name = *rt.Topic
			t = im.Topics[name]
		} else if rt.TopicID != ([16]byte{}) {
			var ok bool
			if t, ok = im.ByID[metadata.TopicID(rt.TopicID)]; !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if t == nil && autoCreate && !reservedTopic(name) {
			created, err := b.createTopic(name, settings.partitions, nil)
			switch {
			case err == nil:
				t = created
			case errors.Is(err, metadata.ErrTopicExists):
				t = b.meta.Image().Topics[name]
			default:
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = createErrCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validateTopicName(name) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(im, t, r, nodes))
	}
	return resp, nil
}

// topicMetadata describes t. Replica lists are the image's (interned: the
// partitions of one broker share one slice, only encoded), so 100k
// partitions cost no 200k allocations; nodes, [this node], stands for a
// partition not placed yet.
func (b *Broker) topicMetadata(im *metadata.Image, t *metadata.Topic, r *kmsg.MetadataRequest, nodes []int32) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	if r.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = allOperations
	}
	ts := b.topic(t.Name)
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, t.Partitions)
	for i := int32(0); i < t.Partitions; i++ {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = i
		mp.Leader, mp.LeaderEpoch = b.leaderOf(im, t, i)
		mp.Replicas, mp.ISR = replicasOf(t, i, nodes)
		switch {
		case mp.Leader < 0:
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mp.ISR, mp.OfflineReplicas = []int32{}, mp.Replicas
		case mp.Leader != b.opts.NodeID:
		case ts != nil && int(i) < len(ts.parts):
			mp.LeaderEpoch = ts.parts[i].LeaderEpoch()
			if ts.parts[i].Failed() {
				mp.ErrorCode = kerr.KafkaStorageError.Code
				mp.OfflineReplicas = mp.Replicas
			}
		default:
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
