package kafka

// Behavior:
//
//   - For every requested partition, the idempotent and transactional
//     producers the partition keeps state for (KIP-664): producer id, the
//     current epoch, the last sequence written in that epoch (-1 if none yet,
//     e.g. right after a transaction marker bumped the epoch), the max
//     timestamp of its last batch or marker, the coordinator epoch (0 once a
//     transaction marker was written for it, -1 before: a single node's
//     coordinator epoch is always 0) and the first offset of its open
//     transaction (-1 if none). Producers are listed by producer id.
//   - Producers idle for producer.id.expiration.ms (1 day; by the broker's
//     clock of their last write here) are forgotten by the retention sweep,
//     unless they have a transaction open in the partition, as in Kafka;
//     until then they are listed.
//   - An unknown topic or partition answers UNKNOWN_TOPIC_OR_PARTITION for
//     that partition only.
//
// Version notes:
//   - v0 only (the only version).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeProducers(b *Broker, r *kmsg.DescribeProducersRequest) (*kmsg.DescribeProducersResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p, code := b.localPartition(rt.Topic, idx)
			if p == nil {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			infos, err := p.ActiveProducers()
			if err != nil {
				sp.ErrorCode = kerr.KafkaStorageError.Code
			}
			for _, pi := range infos {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pi.PID, int32(pi.Epoch)
				ap.LastSequence, ap.LastTimestamp = pi.LastSeq, pi.LastTs
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordEp, pi.TxnStart
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
