package kafka

// Behavior:
//
//   - Batches are served as stored (compressed as the producer sent them),
//     starting with the batch that contains the fetch offset, up to the high
//     watermark (the durable log end: consumers never see data a crash could
//     take back).
//   - Byte limits: PartitionMaxBytes per partition and MaxBytes per response;
//     the first batch of the response is returned even when it is larger
//     (KIP-74), so a consumer can never get stuck behind a big batch.
//   - Long poll: when fewer than MinBytes are available the reply waits, up
//     to MaxWaitMillis, on the group committer's rounds (every round that
//     completes, the one in flight when the fetch came included, may
//     satisfy it) and on replicated high watermarks moving, without
//     blocking the connection's
//     reader. A graceful shutdown (Broker.EndWaits) answers parked fetches
//     at once; a client that disconnects ends its parked fetch unanswered.
//   - An offset outside [log start, log end] answers
//     OFFSET_OUT_OF_RANGE; a CurrentLeaderEpoch other than ours answers
//     FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.
//   - Fetch sessions (KIP-227, v7+; fetch_session.go): SessionEpoch 0
//     starts a session from the request's partitions (closing SessionID if
//     set) and answers in full with the new id; -1 is a sessionless full
//     fetch (closing SessionID if set; the reply's SessionID is 0).
//     SessionEpoch n > 0 is incremental: it must name a live session
//     (else FETCH_SESSION_ID_NOT_FOUND) whose expected epoch is n (else
//     INVALID_FETCH_SESSION_EPOCH); its partitions update the session's
//     fetch state and ForgottenTopics leave it, and the reply carries only
//     partitions with records, an error, or a changed HWM / LSO / log start.
//     The epoch advances once per request, when it is accepted; a long
//     poll builds its reply from the session state captured then and
//     records what it told the client only in the reply it sends.
//   - read_committed (IsolationLevel 1) reads stop at the last stable offset
//     (the first offset of the oldest open transaction, else the HWM) and
//     carry the aborted transactions overlapping the range read, so the
//     client drops their records (txn.go). read_uncommitted reads to the HWM;
//     both report LastStableOffset.
//   - Zero-copy (fetch_zerocopy.go): on a plain TCP connection, unless
//     Options.NoFetchZeroCopy, batches are read as file ranges and sent from
//     the segment files with sendfile; the bytes on the wire are the same.
//
// Version notes:
//   - v4 is the minimum (KIP-896); v7 adds sessions; v13+ addresses topics
//     by id (in requests, forgotten topics and sessions alike).

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchPart is one partition a fetch reads.
type fetchPart struct {
	key                sessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	committed          bool  // isolation_level read_committed (txn.go)
	replica            int32 // the fetching follower's broker id, -1 for a consumer (replication.go)
}

// fetchResult is one partition's answer. A zero-copy read leaves the
// records in files (fetch_zerocopy.go) and resp.RecordBatches empty.
type fetchResult struct {
	key   sessionKey
	resp  kmsg.FetchResponseTopicPartition
	files []storage.FileRange
}

func (r *fetchResult) hasRecords() bool {
	return len(r.resp.RecordBatches) > 0 || len(r.files) > 0
}

// fetchPlan is what one fetch request reads and how it answers.
type fetchPlan struct {
	parts       []fetchPart
	session     *fetchSession // nil: sessionless
	incremental bool
}

func handleFetch(b *Broker, req *wire.Request, r *kmsg.FetchRequest) (kmsg.Response, waitFunc[kmsg.Response], error) {
	plan, code := b.planFetch(r, req.Version)
	if code != 0 {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return resp, nil, nil
	}
	replica := r.ReplicaID
	if req.Version >= 15 {
		replica = r.ReplicaState.ID
	}
	for i := range plan.parts { // plan.parts is this request's own copy
		plan.parts[i].committed = r.IsolationLevel == 1
		plan.parts[i].replica = max(replica, -1)
	}
	zc := b.zeroCopy(req)
	tick := b.committer.Tick()   // taken before reading so no round's completion is missed
	moved := b.repl.moved.wait() // likewise for a replicated high watermark
	results, n := b.fetchOnce(plan.parts, r.MaxBytes, req.Version, zc)
	if n >= int(r.MinBytes) || r.MaxWaitMillis <= 0 {
		return b.fetchResponse(r, req.Version, plan, results), nil, nil
	}
	releaseResults(results)
	deadline := time.Now().Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	return nil, func(ctx context.Context) kmsg.Response {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		for {
			select {
			case <-tick:
			case <-moved:
			case <-t.C:
				results, _ := b.fetchOnce(plan.parts, r.MaxBytes, req.Version, zc)
				return b.fetchResponse(r, req.Version, plan, results)
			case <-ctx.Done():
				if clientGone(req) {
					// Nothing to answer, and the session must not
					// record what the client never saw.
					return nil
				}
				// Shutting down: answer with what there is.
				results, _ := b.fetchOnce(plan.parts, r.MaxBytes, req.Version, zc)
				return b.fetchResponse(r, req.Version, plan, results)
			}
			tick, moved = b.committer.Tick(), b.repl.moved.wait()
			results, n := b.fetchOnce(plan.parts, r.MaxBytes, req.Version, zc)
			if n >= int(r.MinBytes) {
				return b.fetchResponse(r, req.Version, plan, results)
			}
			releaseResults(results)
		}
	}, nil
}

// requestParts flattens the request's partitions, keyed by topic id from
// v13 and by name before.
func requestParts(r *kmsg.FetchRequest, version int16) []fetchPart {
	var out []fetchPart
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, fetchPart{
				key:         partKey(version, rt.Topic, rt.TopicID, rp.Partition),
				fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, currentLeaderEpoch: rp.CurrentLeaderEpoch,
				replica: -1,
			})
		}
	}
	return out
}

func partKey(version int16, topic string, id [16]byte, partition int32) sessionKey {
	if version >= topicIDVersion {
		return sessionKey{topicID: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// planFetch applies the request's session metadata (see Behavior) and
// returns what to read, or a top-level error code.
func (b *Broker) planFetch(r *kmsg.FetchRequest, version int16) (fetchPlan, int16) {
	if version < 7 {
		return fetchPlan{parts: requestParts(r, version)}, 0
	}
	switch {
	case r.SessionEpoch == -1: // final: close, answer sessionless
		if r.SessionID != 0 {
			b.sessions.remove(r.SessionID)
		}
		return fetchPlan{parts: requestParts(r, version)}, 0
	case r.SessionEpoch == 0: // initial: (re)start a session
		if r.SessionID != 0 {
			b.sessions.remove(r.SessionID)
		}
		parts := requestParts(r, version)
		s := b.sessions.create()
		s.mu.Lock()
		for _, fp := range parts {
			s.upsert(fp)
		}
		s.mu.Unlock()
		b.log.Debug("fetch session created", "session_id", s.id, "partitions", len(parts))
		return fetchPlan{parts: parts, session: s}, 0
	case r.SessionEpoch < -1:
		return fetchPlan{}, kerr.InvalidFetchSessionEpoch.Code
	}
	s := b.sessions.get(r.SessionID)
	if s == nil {
		return fetchPlan{}, kerr.FetchSessionIDNotFound.Code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fetchPlan{}, kerr.FetchSessionIDNotFound.Code
	}
	if r.SessionEpoch != s.epoch {
		return fetchPlan{}, kerr.InvalidFetchSessionEpoch.Code
	}
	s.epoch = nextSessionEpoch(s.epoch)
	for _, fp := range requestParts(r, version) {
		s.upsert(fp)
	}
	var forget []sessionKey
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			forget = append(forget, partKey(version, ft.Topic, ft.TopicID, p))
		}
	}
	s.forget(forget)
	return fetchPlan{parts: s.wanted(), session: s, incremental: true}, 0
}

// nextSessionEpoch wraps from MaxInt32 to 1, as Kafka does (0 and -1 are
// the initial and final epochs).
func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// fetchResponse assembles the reply: through the session (which filters an
// incremental reply and records what it tells the client), grouped by topic
// in first-appearance order. Results with file ranges make it a fetchReply.
func (b *Broker) fetchResponse(r *kmsg.FetchRequest, version int16, plan fetchPlan, results []fetchResult) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(version)
	if plan.session != nil {
		resp.SessionID = plan.session.id
		results = plan.session.commit(results, plan.incremental)
	}
	type topicKey struct {
		name string
		id   [16]byte
	}
	idx := map[topicKey]int{}
	var files [][][]storage.FileRange // per topic, per partition; nil without ranges
	var leaders []int32
	for _, res := range results {
		tk := topicKey{res.key.topic, res.key.topicID}
		i, ok := idx[tk]
		if !ok {
			i = len(resp.Topics)
			idx[tk] = i
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = res.key.topic, res.key.topicID
			resp.Topics = append(resp.Topics, st)
			files = append(files, nil)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, res.resp)
		files[i] = append(files[i], res.files)
		if res.resp.ErrorCode == kerr.NotLeaderForPartition.Code && res.resp.CurrentLeader.LeaderID >= 0 {
			leaders = append(leaders, res.resp.CurrentLeader.LeaderID)
		}
	}
	for _, e := range b.endpoints(leaders) { // KIP-951: where to go instead
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: e.id, Host: e.host, Port: e.port, Rack: e.rack})
	}
	var flat [][]storage.FileRange
	for _, f := range files {
		flat = append(flat, f...)
	}
	return newFetchReply(resp, flat)
}

// fetchOnce reads what is durable now for each part and returns the number
// of record bytes read: as file ranges with zc (the caller sends or
// releases them), else in memory.
func (b *Broker) fetchOnce(parts []fetchPart, maxBytes int32, version int16, zc bool) ([]fetchResult, int) {
	remaining := int(maxBytes)
	if remaining <= 0 {
		remaining = 1 << 30
	}
	total, held := 0, 0
	out := make([]fetchResult, len(parts))
	for i := range parts {
		fp := &parts[i]
		res := &out[i]
		res.key = fp.key
		sp := &res.resp
		sp.Default()
		sp.Partition = fp.key.partition
		sp.HighWatermark = -1
		sp.RecordBatches = []byte{} // nil would encode as null, which librdkafka rejects
		ts := b.topicFor(version, fp.key.topic, fp.key.topicID)
		p, missing := b.servePartition(ts, fp.key.partition, version)
		if p == nil {
			sp.ErrorCode = missing
			if missing == kerr.NotLeaderForPartition.Code {
				im := b.meta.Image()
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = b.leaderOf(im, ts.meta, fp.key.partition)
			}
			continue
		}
		if fp.replica >= 0 && !b.replicaFetched(ts, fp) {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code // not a follower of it (a stale image)
			continue
		}
		// Ranges keep their segment files open until the reply is
		// written, whatever the open-file budget closes meanwhile: at
		// most maxZeroCopyParts partitions of one reply hold them, the
		// rest are read into memory.
		n := b.fetchPartition(p, fp, res, remaining, total == 0, zc && held < maxZeroCopyParts)
		if len(res.files) > 0 {
			held++
		}
		total += n
		remaining -= n
	}
	return out, total
}

// maxZeroCopyParts bounds the partitions of one fetch reply sent from
// their segment files (each holds a descriptor until written); beyond it,
// and for ranges too small for sendfile (wire.MinSendfile), the data is
// read into the reply. A consumer's fetch over thousands of partitions
// must not hold thousands of descriptors past the open-file budget.
const maxZeroCopyParts = 64

func (b *Broker) fetchPartition(p *partition.Partition, rp *fetchPart, res *fetchResult, remaining int, first, zc bool) int {
	sp := &res.resp
	off, err := p.Offsets()
	if err != nil { // a failed log, or one that cannot be opened
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return 0
	}
	hwm := off.HighWatermark
	sp.HighWatermark = hwm
	sp.LastStableOffset = off.LastStable
	sp.LogStartOffset = off.LogStart
	if err := p.CheckLeaderEpoch(rp.currentLeaderEpoch); err != nil {
		sp.ErrorCode = partitionErr(err).Code
		return 0
	}
	// Between the high watermark and the log end the data exists but is not
	// durable yet: answer empty (Kafka does the same), not out of range.
	if rp.fetchOffset < sp.LogStartOffset || rp.fetchOffset > off.LogEnd {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0
	}
	upTo := hwm
	switch {
	case rp.replica >= 0:
		// A follower copies up to the durable end, past the high
		// watermark it moves (replication.go).
		upTo = min(p.DurableOffset(), off.LogEnd)
	case rp.committed:
		upTo = sp.LastStableOffset
	}
	if rp.fetchOffset >= upTo || remaining <= 0 {
		return 0
	}
	limit := int(rp.maxBytes)
	if limit > remaining {
		limit = remaining
	}
	var data []byte
	var n, records int
	err = p.WithLog(func(l *storage.Log) error {
		var err error
		if zc {
			// The ranges hold their segment files open (reference
			// counted) until the reply is written, even if the
			// partition is closed meanwhile.
			res.files, n, records, err = l.ReadFile(rp.fetchOffset, limit, upTo, nil)
		} else {
			data, err = l.Read(rp.fetchOffset, limit, upTo, nil)
			n = len(data)
		}
		return err
	})
	if err != nil {
		if !errors.Is(err, storage.ErrOffsetOutOfRange) {
			b.log.Error("fetch read failed", "topic", p.Topic(), "partition", p.Index(), "offset", rp.fetchOffset, "err", err)
		}
		sp.ErrorCode = partitionErr(err).Code
		return 0
	}
	if n > limit && !first {
		// Only the response's first batch may exceed the limits (KIP-74).
		storage.ReleaseRanges(res.files)
		res.files = nil
		return 0
	}
	if zc && n < int(wire.MinSendfile) {
		// Too small for sendfile: the writer would copy it anyway, so
		// copy it now and hold no file.
		for _, fr := range res.files {
			if data, err = fr.AppendTo(data); err != nil {
				break
			}
		}
		storage.ReleaseRanges(res.files)
		res.files = nil
		if err != nil {
			b.log.Error("fetch read failed", "topic", p.Topic(), "partition", p.Index(), "offset", rp.fetchOffset, "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
			return 0
		}
		zc, records = false, 0
		if data == nil {
			data = []byte{}
		}
	}
	if !zc {
		sp.RecordBatches = data
		storage.SplitBatches(data, func(batch []byte) error { // headers only, in memory
			if h, err := storage.ParseBatchHeader(batch); err == nil {
				records += int(h.RecordCount)
			}
			return nil
		})
	}
	if rp.committed {
		sp.AbortedTransactions = abortedTransactions(p.AbortedIn(rp.fetchOffset, upTo))
	}
	b.stats.bytesOut.Add(int64(n))
	b.stats.recordsOut.Add(int64(records))
	return n
}

// abortedTransactions is a partition's aborted transactions as a
// read_committed fetch reports them.
func abortedTransactions(aborted []partition.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	if len(aborted) == 0 {
		return nil
	}
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(aborted))
	for i, a := range aborted {
		out[i].Default()
		out[i].ProducerID, out[i].FirstOffset = a.PID, a.First
	}
	return out
}
