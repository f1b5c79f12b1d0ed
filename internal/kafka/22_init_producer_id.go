package kafka

// Behavior:
//
//   - Idempotent producers (no transactional id) get a fresh producer id with
//     epoch 0. Ids are reserved in blocks in the metadata log before being
//     handed out, so a restart never reissues one.
//   - KIP-360: a producer that names its current id and epoch gets the same
//     id with the epoch bumped (a new id once the epoch would overflow), which
//     lets it reset sequences after an error without losing its identity.
//   - A transactional id goes to the transaction coordinator (internal/txn):
//     one producer id per id, the epoch bumped on every call (older epochs
//     are fenced), an ongoing transaction of the previous epoch aborted
//     first. transaction.timeout.ms above 15 minutes answers
//     INVALID_TRANSACTION_TIMEOUT.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const producerIDBlock = 1000

func handleInitProducerID(b *Broker, r *kmsg.InitProducerIDRequest) (*kmsg.InitProducerIDResponse, error) {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		c := b.txns.Load()
		if c == nil { // no coordinator installed (some tests)
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return resp, nil
		}
		if code := b.notTxnCoordinator(*r.TransactionalID); code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
		pid, epoch, kerrv := c.InitProducerID(*r.TransactionalID, r.TransactionTimeoutMillis, r.ProducerID, r.ProducerEpoch)
		if kerrv != nil {
			resp.ErrorCode = kerrv.Code
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 {
		// Issued by this broker or another: every id below the image's
		// next one was handed out in some broker's block.
		if r.ProducerID >= b.meta.Image().NextProducerID {
			resp.ErrorCode = kerr.InvalidProducerIDMapping.Code
			return resp, nil
		}
		if r.ProducerEpoch < 32766 {
			resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
			return resp, nil
		}
	}
	pid, err := b.allocateProducerID()
	if err != nil {
		b.log.Error("could not reserve producer ids", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid, 0
	return resp, nil
}

func (b *Broker) allocateProducerID() (int64, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.nextPID >= b.reservedPID {
		from, err := b.meta.AllocateProducerIDs(producerIDBlock)
		if err != nil {
			return -1, err
		}
		b.nextPID, b.reservedPID = from, from+producerIDBlock
	}
	pid := b.nextPID
	b.nextPID++
	return pid, nil
}
