package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Index entry sizes on disk (see doc.go).
const (
	indexEntrySize     = 8  // relative offset uint32, position uint32
	timeIndexEntrySize = 12 // timestamp int64, relative offset uint32
)

var errBadIndex = errors.New("storage: index file inconsistent")

// indexEntry maps the base offset of a batch (relative to the segment base)
// to the file position where that batch starts.
type indexEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that every batch of the segment whose base offset is at
// most base+rel has a max timestamp of at most ts. A search for ts' > ts can
// therefore start at that batch.
type timeEntry struct {
	ts  int64
	rel uint32
}

// lookupPos returns the position of the last indexed batch whose base offset
// is <= rel, or 0 when there is none: scanning forward from there reaches the
// batch containing rel.
func lookupPos(idx []indexEntry, rel uint32) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns the relative offset from which a scan for the first
// batch with max timestamp >= ts may start, and whether any entry applied
// (false means: start at the beginning of the segment).
func lookupTime(tidx []timeEntry, ts int64) (uint32, bool) {
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return tidx[i-1].rel, true
}

func encodeIndex(idx []indexEntry) []byte {
	b := make([]byte, 0, len(idx)*indexEntrySize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint32(b, e.rel)
		b = binary.BigEndian.AppendUint32(b, e.pos)
	}
	return b
}

func encodeTimeIndex(tidx []timeEntry) []byte {
	b := make([]byte, 0, len(tidx)*timeIndexEntrySize)
	for _, e := range tidx {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, e.rel)
	}
	return b
}

// decodeIndex parses an offset index and checks what can be checked without
// the log: whole entries, strictly increasing offsets and positions, and
// positions inside a log of logSize bytes.
func decodeIndex(b []byte, logSize int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("%w: offset index length %d", errBadIndex, len(b))
	}
	idx := make([]indexEntry, 0, len(b)/indexEntrySize)
	for i := 0; i < len(b); i += indexEntrySize {
		e := indexEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if int64(e.pos)+BatchHeaderSize > logSize {
			return nil, fmt.Errorf("%w: position %d beyond log size %d", errBadIndex, e.pos, logSize)
		}
		if n := len(idx); n > 0 && (e.rel <= idx[n-1].rel || e.pos <= idx[n-1].pos) {
			return nil, fmt.Errorf("%w: offset index not increasing at entry %d", errBadIndex, n)
		}
		idx = append(idx, e)
	}
	return idx, nil
}

// decodeTimeIndex parses a time index; timestamps and offsets must increase
// strictly (an entry is only added when the max timestamp grew).
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeIndexEntrySize != 0 {
		return nil, fmt.Errorf("%w: time index length %d", errBadIndex, len(b))
	}
	tidx := make([]timeEntry, 0, len(b)/timeIndexEntrySize)
	for i := 0; i < len(b); i += timeIndexEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if n := len(tidx); n > 0 && (e.ts <= tidx[n-1].ts || e.rel < tidx[n-1].rel) {
			return nil, fmt.Errorf("%w: time index not increasing at entry %d", errBadIndex, n)
		}
		tidx = append(tidx, e)
	}
	return tidx, nil
}
