package kafka

// Behavior:
//
//   - The transaction coordinator of another broker asks this one to end a
//     transaction on the partitions this broker leads: a COMMIT or ABORT
//     control batch of the producer id and epoch is appended to each, and
//     the answer waits until they are durable (as a coordinator's own
//     markers do). A partition led elsewhere answers NOT_LEADER_OR_FOLLOWER,
//     an unknown one UNKNOWN_TOPIC_OR_PARTITION, a failed append or fsync
//     KAFKA_STORAGE_ERROR (the coordinator retries the whole completion).
//   - CoordinatorEpoch and TransactionVersion (v2) are not checked: markers
//     of one transaction are idempotent for readers.
//
// Version notes:
//   - v1-v2 (v0 is below Kafka 4.0's baseline, KIP-896). Inter-broker only
//     in Kafka (CLUSTER_ACTION); nothing is authorized until issue 15.

import (
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleWriteTxnMarkers(b *Broker, r *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, rm := range r.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = rm.ProducerID
		var local []txn.TP
		var codes []*int16 // of the local partitions
		for _, rt := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = rt.Topic
			st.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(rt.Partitions))
			for i, p := range rt.Partitions {
				sp := &st.Partitions[i]
				sp.Default()
				sp.Partition = p
				if _, code := b.localPartition(rt.Topic, p); code != 0 {
					sp.ErrorCode = code
					continue
				}
				local = append(local, txn.TP{Topic: rt.Topic, Partition: p})
				codes = append(codes, &sp.ErrorCode)
			}
			sm.Topics = append(sm.Topics, st)
		}
		if len(local) > 0 {
			if err := b.writeMarkers(rm.ProducerID, rm.ProducerEpoch, rm.Committed, local); err != nil {
				b.log.Warn("transaction markers for another broker's coordinator failed", "producer_id", rm.ProducerID, "err", err)
				for _, c := range codes {
					*c = kerr.KafkaStorageError.Code
				}
			}
		}
		resp.Markers = append(resp.Markers, sm)
	}
	return resp, nil
}
