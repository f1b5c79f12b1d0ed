package storage

import (
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EncodeBatch builds an uncompressed v2 record batch holding records, all
// stamped with timestamp ts, producer id -1 (no idempotence). The broker uses
// it for its internal logs (metadata, offsets); the base offset is left 0 for
// Append to fill in.
func EncodeBatch(ts int64, records []kmsg.Record) []byte {
	return encodeBatch(ts, records, -1, -1, 0)
}

// EncodeTxnBatch is EncodeBatch for a coordinator's records written in a
// producer's transaction (Kafka's transactional offset commits): the
// producer id and epoch, the transactional attribute and no sequence (a
// coordinator's append is not an idempotent producer's).
func EncodeTxnBatch(ts int64, records []kmsg.Record, pid int64, epoch int16) []byte {
	return encodeBatch(ts, records, pid, epoch, AttrTransactional)
}

// EncodeMarker builds the control batch ending producer pid's transaction:
// one record with key (version 0, type 1 commit / 0 abort) and value
// (version 0, coordinator epoch 0), as Kafka writes it.
func EncodeMarker(ts int64, pid int64, epoch int16, commit bool) []byte {
	key := []byte{0, 0, 0, 0}
	if commit {
		key[3] = 1
	}
	return encodeBatch(ts, []kmsg.Record{{Key: key, Value: make([]byte, 6)}}, pid, epoch, AttrTransactional|AttrControl)
}

func encodeBatch(ts int64, records []kmsg.Record, pid int64, epoch int16, attrs int16) []byte {
	var body []byte
	for i := range records {
		r := records[i]
		r.Length = 0
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = 0
		r.TimestampDelta = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1) // placeholder length is a 1-byte varint 0
		body = r.AppendTo(body)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(records) - 1),
		Attributes: attrs, FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: -1,
		NumRecords: int32(len(records)), Records: body,
	}
	b.Length = int32(BatchHeaderSize - batchLengthOverhead + len(body))
	out := b.AppendTo(make([]byte, 0, BatchHeaderSize+len(body)))
	crc := crc32.Checksum(out[offAttributes:], castagnoli)
	out[offCRC], out[offCRC+1], out[offCRC+2], out[offCRC+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return out
}

// DecodeRecords calls fn for every record of an uncompressed batch. Compressed
// batches are decompressed first by the caller-supplied decompress (nil:
// compressed batches are an error).
func DecodeRecords(batch []byte, decompress func(codec int8, in []byte) ([]byte, error), fn func(r *kmsg.Record) error) error {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if h.Size() > len(batch) || h.Size() < BatchHeaderSize {
		return ErrBatchLength
	}
	body := batch[BatchHeaderSize:h.Size()]
	if c := h.Compression(); c != 0 {
		if decompress == nil {
			return ErrBatchCompressed
		}
		if body, err = decompress(c, body); err != nil {
			return err
		}
	}
	var r kmsg.Record
	for i := int32(0); i < h.RecordCount; i++ {
		n, l := varint(body)
		if l <= 0 || n < 0 || int(n) > len(body)-l {
			return ErrRecordTruncated
		}
		if err := r.ReadFrom(body[:l+int(n)]); err != nil {
			return ErrRecordTruncated
		}
		if err := fn(&r); err != nil {
			return err
		}
		body = body[l+int(n):]
	}
	return nil
}

// varint decodes a zig-zag varint as Kafka writes record lengths.
func varint(b []byte) (int64, int) {
	var ux uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			ux |= uint64(c) << s
			return int64(ux>>1) ^ -int64(ux&1), i + 1
		}
		ux |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}
