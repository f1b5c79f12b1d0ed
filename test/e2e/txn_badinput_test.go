package e2e

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnBadInput: the bad transactional input against the binary
// with raw requests: EndTxn without a transaction, wrong epochs and producer
// ids, AddPartitionsToTxn naming an unknown topic, transactional produces to
// a partition not added, TxnOffsetCommit without AddOffsetsToTxn. Each gets
// Kafka's error code and writes nothing; a correct transaction afterwards
// still works.
func TestTxnBadInput(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	clientsCreateTopic(t, kadm.NewClient(b.Client(t)), "txn-bad", 1, nil)
	rc := dialRaw(t, b.Addr)
	code := func(what string, got int16, want *kerr.Error) { t.Helper(); expectCode(t, what, got, want) }

	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("bad"), 60000
	ir := rc.roundTrip(init).(*kmsg.InitProducerIDResponse)
	code("InitProducerId", ir.ErrorCode, nil)
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	end := func(pid int64, epoch int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.SetVersion(3)
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "bad", pid, epoch, commit
		return rc.roundTrip(req).(*kmsg.EndTxnResponse).ErrorCode
	}
	add := func(pid int64, epoch int16, topics map[string][]int32) map[string]int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.SetVersion(3)
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = "bad", pid, epoch
		for tp, ps := range topics {
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = tp, ps
			req.Topics = append(req.Topics, rt)
		}
		out := map[string]int16{}
		for _, st := range rc.roundTrip(req).(*kmsg.AddPartitionsToTxnResponse).Topics {
			out[st.Topic] = st.Partitions[0].ErrorCode
		}
		return out
	}
	produce := func(seq int32, tag string) int16 {
		req := produceRequest(9, "txn-bad", 0, idemBatchAttrs(pid, epoch, seq, 2, tag, 0x10))
		req.TransactionID = kmsg.StringPtr("bad")
		return rc.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}

	code("EndTxn commit without a transaction", end(pid, epoch, true), kerr.InvalidTxnState)
	code("EndTxn abort without a transaction", end(pid, epoch, false), kerr.InvalidTxnState)
	code("EndTxn newer epoch", end(pid, epoch+1, true), kerr.InvalidProducerEpoch)
	code("EndTxn older epoch", end(pid, epoch-1, true), kerr.ProducerFenced)
	code("EndTxn other producer id", end(pid+1, epoch, true), kerr.InvalidProducerIDMapping)

	got := add(pid, epoch, map[string][]int32{"txn-bad": {0}, "no-such-topic": {0}})
	code("AddPartitionsToTxn: known partition beside an unknown topic", got["txn-bad"], kerr.OperationNotAttempted)
	code("AddPartitionsToTxn: unknown topic", got["no-such-topic"], kerr.UnknownTopicOrPartition)
	code("produce to a partition whose add failed", produce(0, "a"), kerr.InvalidTxnState)
	code("AddPartitionsToTxn older epoch", add(pid, epoch-1, map[string][]int32{"txn-bad": {0}})["txn-bad"], kerr.ProducerFenced)
	code("produce after a fenced add", produce(0, "b"), kerr.InvalidTxnState)

	txc := kmsg.NewPtrTxnOffsetCommitRequest()
	txc.SetVersion(3)
	txc.TransactionalID, txc.Group, txc.ProducerID, txc.ProducerEpoch, txc.Generation = "bad", "g", pid, epoch, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "txn-bad"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Offset = 1
	rt.Partitions = append(rt.Partitions, rp)
	txc.Topics = append(txc.Topics, rt)
	code("TxnOffsetCommit without AddOffsetsToTxn", rc.roundTrip(txc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.InvalidTxnState)

	if end := rc.latestOffset("txn-bad", 0); end != 0 {
		t.Fatalf("bad input wrote to the log: end offset %d", end)
	}

	// The same producer, used correctly: two records and a COMMIT marker.
	code("AddPartitionsToTxn", add(pid, epoch, map[string][]int32{"txn-bad": {0}})["txn-bad"], nil)
	code("transactional produce", produce(0, "ok"), nil)
	code("EndTxn commit", end(pid, epoch, true), nil)
	if end := rc.latestOffset("txn-bad", 0); end != 3 {
		t.Fatalf("after one committed transaction of 2 records: end offset %d, want 3", end)
	}
	code("EndTxn retried", end(pid, epoch, true), nil)
	code("EndTxn abort after commit", end(pid, epoch, false), kerr.InvalidTxnState)
	code("produce after the transaction ended", produce(2, "late"), kerr.InvalidTxnState)
	if end := rc.latestOffset("txn-bad", 0); end != 3 {
		t.Fatalf("late input wrote to the log: end offset %d, want 3", end)
	}
}
