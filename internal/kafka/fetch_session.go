package kafka

// Fetch sessions (KIP-227). A session remembers, per partition, what the
// client fetches (offset, max bytes, current leader epoch) and what the last
// response told it (high watermark, last stable offset, log start), so an
// incremental fetch names only the partitions whose fetch state changed and
// the response carries only partitions with news: records, an error, or a
// changed HWM / LSO / log start.
//
// Sessions live in a bounded cache keyed by session id, independent of
// connections (a client may carry a session across reconnects, as in
// Kafka). When the cache is full, creating a session evicts the least
// recently used one; its owner's next incremental fetch gets
// FETCH_SESSION_ID_NOT_FOUND and starts over with a full fetch, which every
// client handles. (Kafka's FetchSessionCache additionally protects recently
// used and large sessions from eviction; plain LRU is enough for a single
// broker.)
//
// Concurrency: fetchSessions.mu guards the map and the LRU list;
// fetchSession.mu guards one session's partitions and epoch. Lock order:
// fetchSessions.mu -> fetchSession.mu; neither is held while reading logs.

import (
	"container/list"
	"math/rand/v2"
	"slices"
	"sync"
)

// defaultMaxFetchSessions is Kafka's max.incremental.fetch.session.cache.slots.
const defaultMaxFetchSessions = 1000

// sessionKey names a partition in a session: by topic id from Fetch v13, by
// name before (the other field is zero).
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPart is one partition of a session: the client's fetch state and
// what the last response said about it.
type sessionPart struct {
	key                sessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32

	// From the last response that included the partition; -1 = never sent.
	hwm, lso, logStart int64
}

// fetchSession is one client's session.
type fetchSession struct {
	id int32

	mu      sync.Mutex
	epoch   int32 // the epoch the next incremental request must carry
	parts   []*sessionPart
	byKey   map[sessionKey]*sessionPart
	closed  bool          // evicted or closed: late replies must not update it
	lruElem *list.Element // guarded by fetchSessions.mu
}

// fetchSessions is the bounded session cache.
type fetchSessions struct {
	max int

	mu   sync.Mutex
	byID map[int32]*fetchSession
	lru  *list.List // front = most recently used; values *fetchSession
}

func newFetchSessions(max int) *fetchSessions {
	if max <= 0 {
		max = defaultMaxFetchSessions
	}
	return &fetchSessions{max: max, byID: map[int32]*fetchSession{}, lru: list.New()}
}

// create adds a session, evicting the least recently used one when full.
func (c *fetchSessions) create() *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byID) >= c.max {
		old := c.lru.Back().Value.(*fetchSession)
		c.removeLocked(old)
	}
	id := rand.Int32()
	for id == 0 || c.byID[id] != nil {
		id = rand.Int32()
	}
	s := &fetchSession{id: id, epoch: 1, byKey: map[sessionKey]*sessionPart{}}
	s.lruElem = c.lru.PushFront(s)
	c.byID[id] = s
	return s
}

// get returns the session and marks it used, or nil.
func (c *fetchSessions) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byID[id]
	if s != nil {
		c.lru.MoveToFront(s.lruElem)
	}
	return s
}

// remove closes the session with id, if any.
func (c *fetchSessions) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.byID[id]; s != nil {
		c.removeLocked(s)
	}
}

func (c *fetchSessions) removeLocked(s *fetchSession) {
	c.lru.Remove(s.lruElem)
	delete(c.byID, s.id)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// len is the number of live sessions.
func (c *fetchSessions) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// upsert adds a partition or updates its fetch state. Caller holds s.mu.
func (s *fetchSession) upsert(fp fetchPart) {
	sp := s.byKey[fp.key]
	if sp == nil {
		sp = &sessionPart{key: fp.key, hwm: -1, lso: -1, logStart: -1}
		s.byKey[fp.key] = sp
		s.parts = append(s.parts, sp)
	}
	sp.fetchOffset, sp.maxBytes, sp.currentLeaderEpoch = fp.fetchOffset, fp.maxBytes, fp.currentLeaderEpoch
}

// forget drops partitions. Caller holds s.mu.
func (s *fetchSession) forget(keys []sessionKey) {
	if len(keys) == 0 {
		return
	}
	for _, k := range keys {
		delete(s.byKey, k)
	}
	s.parts = slices.DeleteFunc(s.parts, func(sp *sessionPart) bool { return s.byKey[sp.key] != sp })
}

// wanted is the session's fetch list, in session order. Caller holds s.mu.
func (s *fetchSession) wanted() []fetchPart {
	out := make([]fetchPart, len(s.parts))
	for i, sp := range s.parts {
		out[i] = fetchPart{key: sp.key, fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes, currentLeaderEpoch: sp.currentLeaderEpoch, replica: -1}
	}
	return out
}

// commit records what a response is about to tell the client and, for an
// incremental response, keeps only the partitions with news. Partitions that
// returned records move to the end of the session order so that, under a
// response size limit, the others get their turn next time (as Kafka
// does). It returns the results to send.
func (s *fetchSession) commit(results []fetchResult, incremental bool) []fetchResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := results[:0:0]
	var moved []*sessionPart
	for i := range results {
		r := &results[i]
		sp := s.byKey[r.key]
		changed := sp == nil || r.resp.ErrorCode != 0 || r.hasRecords() ||
			sp.hwm != r.resp.HighWatermark || sp.lso != r.resp.LastStableOffset || sp.logStart != r.resp.LogStartOffset
		if incremental && !changed {
			continue
		}
		out = append(out, *r)
		if sp == nil || s.closed {
			continue
		}
		sp.hwm, sp.lso, sp.logStart = r.resp.HighWatermark, r.resp.LastStableOffset, r.resp.LogStartOffset
		if r.hasRecords() {
			moved = append(moved, sp)
		}
	}
	if len(moved) > 0 && !s.closed {
		isMoved := make(map[*sessionPart]bool, len(moved))
		for _, sp := range moved {
			isMoved[sp] = true
		}
		s.parts = slices.DeleteFunc(s.parts, func(sp *sessionPart) bool { return isMoved[sp] })
		s.parts = append(s.parts, moved...)
	}
	return out
}
