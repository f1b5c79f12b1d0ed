package kafka

// Behavior:
//
//   - For every requested transactional id, its durable state in the
//     transaction coordinator (internal/txn): state by Kafka's names (Empty,
//     Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort),
//     producer id and epoch, transaction.timeout.ms, the start time of the
//     transaction in progress (-1 when none is) and the partitions enrolled
//     in it, grouped by topic in the order they were added. Completed
//     transactions list no partitions (Kafka clears them too).
//   - An id the coordinator does not know (never initialised, or expired
//     after transactional.id.expiration.ms) answers
//     TRANSACTIONAL_ID_NOT_FOUND; requested ids are answered in request
//     order, duplicates once each.
//   - Without a transaction coordinator (tests) every id answers
//     COORDINATOR_NOT_AVAILABLE.
//
// Version notes:
//   - v0 only (the only version).

import (
	"slices"

	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeTransactions(b *Broker, r *kmsg.DescribeTransactionsRequest) (*kmsg.DescribeTransactionsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	c := b.txns.Load()
	var found map[string]txn.Entry
	if c != nil {
		found = c.Describe(r.TransactionalIDs)
	}
	seen := map[string]bool{}
	for _, id := range r.TransactionalIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		e, ok := found[id]
		switch {
		case c == nil:
			st.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case b.notTxnCoordinator(id) != 0:
			st.ErrorCode = kerr.NotCoordinator.Code
		case !ok:
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			fillTxnState(&st, &e)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func fillTxnState(st *kmsg.DescribeTransactionsResponseTransactionState, e *txn.Entry) {
	st.State = string(e.Status)
	st.TimeoutMillis = e.TimeoutMs
	st.ProducerID, st.ProducerEpoch = e.PID, e.Epoch
	st.StartTimestamp = -1
	if e.Running() {
		st.StartTimestamp = e.StartMs
	}
	for _, tp := range e.Partitions {
		i := slices.IndexFunc(st.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool { return t.Topic == tp.Topic })
		if i < 0 {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic = tp.Topic
			st.Topics = append(st.Topics, t)
			i = len(st.Topics) - 1
		}
		st.Topics[i].Partitions = append(st.Topics[i].Partitions, tp.Partition)
	}
}
