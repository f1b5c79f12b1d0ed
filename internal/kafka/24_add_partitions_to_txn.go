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
//     coordinator before appending a transactional batch: a leader whose
//     transaction coordinator is another broker sends it (VerifyOnly under
//     transaction version 1, adding under version 2; txn.go enrolRemote),
//     one that coordinates the id itself checks in process.
//   - Partitions may be led by any broker: the coordinator has their leaders
//     write the markers (WriteTxnMarkers). An id this broker does not
//     coordinate answers NOT_COORDINATOR.
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

func handleAddPartitionsToTxn(b *Broker, r *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	txns := r.Transactions
	if r.Version <= 3 { // the client form is one transaction of the batched form
		rx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch = r.TransactionalID, r.ProducerID, r.ProducerEpoch
		for _, rt := range r.Topics {
			rx.Topics = append(rx.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: rt.Topic, Partitions: rt.Partitions})
		}
		txns = []kmsg.AddPartitionsToTxnRequestTransaction{rx}
	}
	for _, rx := range txns {
		codes := b.addPartitionsToTxn(rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch, rx.VerifyOnly, rx.Topics)
		sx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		sx.TransactionalID = rx.TransactionalID
		for i, rt := range rx.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			st.Topic = rt.Topic
			for j, p := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: codes[i][j]})
			}
			sx.Topics = append(sx.Topics, st)
		}
		resp.Transactions = append(resp.Transactions, sx)
	}
	if r.Version <= 3 {
		for _, st := range resp.Transactions[0].Topics {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: st.Topic}
			for _, sp := range st.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: sp.Partition, ErrorCode: sp.ErrorCode})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		resp.Transactions = nil
	}
	return resp, nil
}

// addPartitionsToTxn adds (or with verifyOnly, checks) the partitions of one
// transaction and returns an error code per partition, shaped like topics.
func (b *Broker) addPartitionsToTxn(id string, pid int64, epoch int16, verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) [][]int16 {
	codes := make([][]int16, len(topics))
	c := b.txns.Load()
	var parts []txn.TP
	unknown := false
	for i, t := range topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			if b.partition(t.Topic, p) == nil {
				unknown = true
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			}
			parts = append(parts, txn.TP{Topic: t.Topic, Partition: p})
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
	case b.notTxnCoordinator(id) != 0:
		fill(kerr.NotCoordinator.Code)
	case verifyOnly:
		for i, t := range topics {
			for j, p := range t.Partitions {
				if codes[i][j] == 0 {
					codes[i][j] = errCode(c.Verify(id, pid, epoch, txn.TP{Topic: t.Topic, Partition: p}))
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
