package kafka

// Behavior:
//
//   - Enrols partitions in the producer's transaction (starting it if
//     none is ongoing); the coordinator (internal/txn) checks the producer id
//     and epoch (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED) and refuses
//     while a commit or abort is in progress (CONCURRENT_TRANSACTIONS). An
//     unknown partition fails alone with UNKNOWN_TOPIC_OR_PARTITION and the
//     rest answer OPERATION_NOT_ATTEMPTED, as in Kafka.
//   - v4+ (KIP-890 part 1) batches several transactions in one request and
//     adds VerifyOnly: the partitions are not added, each answers NONE if it
//     is in the id's ongoing transaction and INVALID_TXN_STATE if not (or the
//     producer's id/epoch error). Partition leaders send this form to the
//     coordinator before appending a transactional batch; this broker is both
//     and checks enrolment in process on every transactional produce, so the
//     form serves other tools and future replicas.
//
// Version notes:
//   - v0-v3, the client form (one transaction, top-level id, producer id and
//     epoch). v4-v5, the batched form; v5 only tells the coordinator that
//     the caller understands TRANSACTION_ABORTABLE, which this coordinator
//     does not need to send. The top-level error code (v4+) is always NONE:
//     there is no authorization to fail yet.

import (
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnTopicParts is one topic's partitions in either request form.
type txnTopicParts struct {
	topic string
	parts []int32
}

func handleAddPartitionsToTxn(b *Broker, r *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version <= 3 {
		topics := make([]txnTopicParts, 0, len(r.Topics))
		for _, rt := range r.Topics {
			topics = append(topics, txnTopicParts{rt.Topic, rt.Partitions})
		}
		codes := b.addPartitionsToTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, false, topics)
		for i, rt := range r.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = rt.Topic
			for j, p := range rt.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition, sp.ErrorCode = p, codes[i][j]
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, rx := range r.Transactions {
		topics := make([]txnTopicParts, 0, len(rx.Topics))
		for _, rt := range rx.Topics {
			topics = append(topics, txnTopicParts{rt.Topic, rt.Partitions})
		}
		codes := b.addPartitionsToTxn(rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch, rx.VerifyOnly, topics)
		sx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		sx.TransactionalID = rx.TransactionalID
		for i, rt := range rx.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			st.Topic = rt.Topic
			for j, p := range rt.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				sp.Partition, sp.ErrorCode = p, codes[i][j]
				st.Partitions = append(st.Partitions, sp)
			}
			sx.Topics = append(sx.Topics, st)
		}
		resp.Transactions = append(resp.Transactions, sx)
	}
	return resp, nil
}

// addPartitionsToTxn adds (or with verifyOnly, checks) the partitions of one
// transaction and returns an error code per partition, shaped like topics.
func (b *Broker) addPartitionsToTxn(id string, pid int64, epoch int16, verifyOnly bool, topics []txnTopicParts) [][]int16 {
	codes := make([][]int16, len(topics))
	c := b.txns.Load()
	var parts []txn.TP
	unknown := false
	for i, t := range topics {
		codes[i] = make([]int16, len(t.parts))
		for j, p := range t.parts {
			if b.partition(t.topic, p) == nil {
				unknown = true
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			}
			parts = append(parts, txn.TP{Topic: t.topic, Partition: p})
		}
	}
	fill := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	switch {
	case c == nil:
		fill(kerr.CoordinatorNotAvailable.Code)
	case verifyOnly:
		for i, t := range topics {
			for j, p := range t.parts {
				if codes[i][j] == 0 {
					codes[i][j] = errCode(c.Verify(id, pid, epoch, txn.TP{Topic: t.topic, Partition: p}))
				}
			}
		}
	case unknown:
		// Kafka adds nothing when any partition is unknown.
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
	default:
		fill(errCode(c.AddPartitions(id, pid, epoch, parts)))
	}
	return codes
}
