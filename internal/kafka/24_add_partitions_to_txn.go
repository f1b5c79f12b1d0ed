package kafka

// Behavior:
//
//   - Enrols partitions in the producer's transaction (starting it if
//     none is ongoing); the coordinator (internal/txn) checks the producer id
//     and epoch (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED) and refuses
//     while a commit or abort is in progress (CONCURRENT_TRANSACTIONS). An
//     unknown partition fails alone with UNKNOWN_TOPIC_OR_PARTITION and the
//     rest answer OPERATION_NOT_ATTEMPTED, as in Kafka.
//
// Version notes:
//   - v0-v3, the client form. v4+ (the broker-to-broker verification form,
//     KIP-890) is not served.

import (
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddPartitionsToTxn(b *Broker, r *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	c := b.txns.Load()
	var code int16
	var parts []txn.TP
	unknown := false
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			if b.partition(rt.Topic, p) == nil {
				unknown = true
			}
			parts = append(parts, txn.TP{Topic: rt.Topic, Partition: p})
		}
	}
	switch {
	case c == nil:
		code = kerr.CoordinatorNotAvailable.Code
	case unknown:
		code = -1 // per partition below
	default:
		code = errCode(c.AddPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, parts))
	}
	for _, rt := range r.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, code
			if code == -1 {
				sp.ErrorCode = kerr.OperationNotAttempted.Code
				if b.partition(rt.Topic, p) == nil {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
