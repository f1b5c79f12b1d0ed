package kafka

// Behavior:
//
//   - Lists the transactional ids the coordinator knows (KIP-664) with
//     their producer id and state, sorted by id. Filters combine: states
//     (any of; Kafka's state names, case sensitive), producer ids (any of)
//     and, v1+, DurationFilterMillis >= 0: only transactions in progress
//     (Ongoing, PrepareCommit, PrepareAbort) that started more than that
//     many milliseconds ago (KIP-994, finding hanging transactions).
//   - State filters that are not Kafka state names are echoed in
//     UnknownStateFilters (and match nothing), as Kafka does.
//   - Without a transaction coordinator (tests) the answer is
//     COORDINATOR_NOT_AVAILABLE.
//
// Version notes:
//   - v0: state and producer id filters.
//   - v1: DurationFilterMillis (default -1, no filter).
//   - v2: TransactionalIDPattern (KIP-1152): a regular expression in RE2
//     syntax (Kafka compiles it with RE2/J, the same syntax as Go's regexp)
//     that must match the whole transactional id; null or empty matches
//     all. One that does not compile is answered INVALID_REGULAR_EXPRESSION.

import (
	"regexp"

	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListTransactions(b *Broker, r *kmsg.ListTransactionsRequest) (*kmsg.ListTransactionsResponse, error) {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	c := b.txns.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	f := txn.ListFilter{PIDs: r.ProducerIDFilters, MinRunningMs: -1}
	if r.Version >= 1 {
		f.MinRunningMs = r.DurationFilterMillis
	}
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		// Anchored: the whole id must match (Kafka's Matcher.matches).
		re, err := regexp.Compile(`^(?:` + *r.TransactionalIDPattern + `)$`)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
		f.ID = re
	}
	for _, s := range r.StateFilters {
		if txn.KnownStatus(s) {
			f.Statuses = append(f.Statuses, txn.Status(s))
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	if len(r.StateFilters) > 0 && len(f.Statuses) == 0 {
		return resp, nil // only unknown states: nothing matches
	}
	for _, e := range c.List(f) {
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = e.ID, e.PID, string(e.Status)
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}
