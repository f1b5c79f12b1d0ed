package bench

import "sync"

// Validation is what --validate found. A run validates when Errors() is 0.
type Validation struct {
	Checked    int64 `json:"checked"`      // records examined
	Valid      int64 `json:"valid"`        // checksum good, order good
	Foreign    int64 `json:"foreign"`      // not written by chronik-bench (no header)
	Corrupt    int64 `json:"corrupt"`      // header present, checksum wrong
	OutOfOrder int64 `json:"out_of_order"` // a sender's sequence went backwards in a partition
	Duplicate  int64 `json:"duplicate"`    // a sender's sequence repeated in a partition
	Acked      int64 `json:"acked"`        // round-trip: records the broker acknowledged
	Missing    int64 `json:"missing"`      // round-trip: acknowledged but never consumed
	Unacked    int64 `json:"unacked_seen"` // round-trip: consumed although the produce failed (not an error)
}

// Errors is the number of problems found.
func (v *Validation) Errors() int64 {
	return v.Foreign + v.Corrupt + v.OutOfOrder + v.Duplicate + v.Missing
}

type seqKey struct {
	run       uint64
	producer  uint32
	partition int32
}

type sentKey struct {
	producer uint32
	seq      uint64
}

// validator checks records as consumers see them. Safe for concurrent use.
type validator struct {
	mu      sync.Mutex
	runID   uint64 // round-trip: only this run's records count; 0: all
	last    map[seqKey]uint64
	failed  map[sentKey]bool // round-trip: produces that failed
	matched int64            // round-trip: acked records consumed once
	v       Validation
}

func newValidator(runID uint64) *validator {
	return &validator{runID: runID, last: map[seqKey]uint64{}, failed: map[sentKey]bool{}}
}

// produceFailed notes a record whose produce failed: seeing it later is
// allowed (the broker may have stored it) but it is not expected.
func (val *validator) produceFailed(producer uint32, seq uint64) {
	val.mu.Lock()
	val.failed[sentKey{producer, seq}] = true
	val.mu.Unlock()
}

// check examines one record value from partition. It returns the decoded
// header and whether it belongs to this run (for round-trip latency).
func (val *validator) check(partition int32, value []byte) (header, bool) {
	h, res := decodeHeader(value)
	val.mu.Lock()
	defer val.mu.Unlock()
	switch res {
	case decodeForeign:
		if val.runID == 0 {
			val.v.Checked++
			val.v.Foreign++
		}
		return h, false
	case decodeCorrupt:
		val.v.Checked++
		val.v.Corrupt++
		return h, false
	}
	if val.runID != 0 && h.RunID != val.runID {
		return h, false // an earlier run's record left in the topic
	}
	val.v.Checked++
	k := seqKey{h.RunID, h.Producer, partition}
	last, seen := val.last[k]
	switch {
	case seen && h.Seq == last:
		val.v.Duplicate++
		return h, true
	case seen && h.Seq < last:
		val.v.OutOfOrder++
		return h, true
	}
	val.last[k] = h.Seq
	val.v.Valid++
	if val.failed[sentKey{h.Producer, h.Seq}] {
		val.v.Unacked++
	} else {
		val.matched++
	}
	return h, true
}

// result finishes the validation; acked < 0 means no completeness check.
func (val *validator) result(acked int64) *Validation {
	val.mu.Lock()
	defer val.mu.Unlock()
	v := val.v
	if acked >= 0 {
		v.Acked = acked
		v.Missing = max(acked-val.matched, 0)
	}
	return &v
}

// matchedCount is how many acknowledged records were consumed so far.
func (val *validator) matchedCount() int64 {
	val.mu.Lock()
	defer val.mu.Unlock()
	return val.matched
}
