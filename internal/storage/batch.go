package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record batch v2 header layout (Kafka's DefaultRecordBatch), all big-endian:
//
//	0  baseOffset            int64
//	8  batchLength           int32   (bytes after this field)
//	12 partitionLeaderEpoch  int32
//	16 magic                 int8    (2)
//	17 crc                   uint32  (CRC-32C of bytes 21..end)
//	21 attributes            int16
//	23 lastOffsetDelta       int32
//	27 baseTimestamp         int64
//	35 maxTimestamp          int64
//	43 producerId            int64
//	51 producerEpoch         int16
//	53 baseSequence          int32
//	57 recordCount           int32
//	61 records...
const (
	BatchHeaderSize = 61
	// batchLengthOverhead is the part of the header not counted in batchLength.
	batchLengthOverhead = 12

	offBaseOffset    = 0
	offBatchLength   = 8
	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offBaseTimestamp = 27
	offMaxTimestamp  = 35
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
	offRecordCount   = 57

	// Attribute bits.
	AttrCompressionMask = 0x07
	AttrTimestampType   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	// AttrDeleteHorizon (Kafka's DELETE_HORIZON_FLAG_MASK, KIP-534): set by
	// compaction on a batch it kept tombstones in; the base timestamp is
	// then the delete horizon (Unix ms), after which those tombstones may
	// go, and record timestamp deltas are relative to it.
	AttrDeleteHorizon = 0x40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch validation errors. The Kafka layer maps them to CORRUPT_MESSAGE /
// INVALID_RECORD / UNSUPPORTED_FOR_MESSAGE_FORMAT.
var (
	ErrBatchTooShort   = errors.New("storage: record batch shorter than its header")
	ErrBatchLength     = errors.New("storage: record batch length field does not match its bytes")
	ErrBatchMagic      = errors.New("storage: record batch magic is not 2")
	ErrBatchCRC        = errors.New("storage: record batch CRC-32C mismatch")
	ErrBatchRecordSpan = errors.New("storage: record batch record count does not match its last offset delta")
)

// BatchHeader is the fixed part of a v2 record batch, parsed without copying
// the records.
type BatchHeader struct {
	BaseOffset      int64
	BatchLength     int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Size is the total size of the batch in bytes, header included.
func (h *BatchHeader) Size() int { return int(h.BatchLength) + batchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch's last record.
func (h *BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression returns the codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *BatchHeader) Compression() int8 { return int8(h.Attributes & AttrCompressionMask) }

// IsTransactional reports the transactional attribute bit.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports the control-batch attribute bit.
func (h *BatchHeader) IsControl() bool { return h.Attributes&AttrControl != 0 }

// DeleteHorizon returns the delete horizon compaction stamped into the
// batch, if it did (AttrDeleteHorizon).
func (h *BatchHeader) DeleteHorizon() (int64, bool) {
	if h.Attributes&AttrDeleteHorizon == 0 {
		return 0, false
	}
	return h.BaseTimestamp, true
}

// ParseBatchHeader reads the header of the batch at the start of b. It checks
// only that the header is present; use ValidateBatch for full checks.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, ErrBatchTooShort
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:     int32(be.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastDelta:])),
		BaseTimestamp:   int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// ValidateBatch checks that b holds exactly one well-formed v2 batch: the
// length field matches len(b), magic is 2, the CRC-32C matches and the record
// count agrees with the last offset delta. It does not decompress records.
func ValidateBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if h.BatchLength < BatchHeaderSize-batchLengthOverhead || h.Size() != len(b) {
		return h, fmt.Errorf("%w: length field %d, have %d bytes", ErrBatchLength, h.BatchLength, len(b)-batchLengthOverhead)
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrBatchMagic, h.Magic)
	}
	if crc32.Checksum(b[offAttributes:], castagnoli) != h.CRC {
		return h, ErrBatchCRC
	}
	if h.RecordCount < 0 || h.LastOffsetDelta < 0 || (!h.IsControl() && h.RecordCount == 0) ||
		(h.RecordCount > 0 && int64(h.LastOffsetDelta) != int64(h.RecordCount)-1) {
		return h, fmt.Errorf("%w: count %d, last delta %d", ErrBatchRecordSpan, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// SplitBatches walks a concatenation of batches (a produce request's records
// field) and calls fn for each complete batch. A trailing partial batch is an
// error: producers never send one.
func SplitBatches(b []byte, fn func(batch []byte) error) error {
	for len(b) > 0 {
		if len(b) < BatchHeaderSize {
			return ErrBatchTooShort
		}
		n := int(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + batchLengthOverhead
		if n < BatchHeaderSize || n > len(b) {
			return fmt.Errorf("%w: batch claims %d bytes, %d remain", ErrBatchLength, n, len(b))
		}
		if err := fn(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// SetBaseOffset writes the broker-assigned base offset into the batch. The
// base offset is outside the CRC, so the CRC stays valid.
func SetBaseOffset(b []byte, base int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base)) }

// SetLeaderEpoch stamps the partition leader epoch (also outside the CRC).
func SetLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime stamps a batch for a LogAppendTime topic: timestamp type
// LogAppendTime and max timestamp ts, with the CRC fixed, since both are
// inside it.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | AttrTimestampType
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

var (
	ErrBatchCompressed = errors.New("storage: compressed batch where none was expected")
	ErrRecordTruncated = errors.New("storage: record inside batch truncated or malformed")
)
