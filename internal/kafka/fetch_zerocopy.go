package kafka

// Zero-copy fetch (issue 13). On a plain TCP connection a fetch reads its
// batches as file ranges (storage.Log.ReadFile) instead of bytes, and the
// reply is a fetchReply: the response fields are encoded here, by hand, and
// the connection's writer sends the ranges with sendfile where the records
// go (wire.Vectored). The hand encoding covers the fields this broker sets;
// a response with anything else (tagged fields, unknown tags, node
// endpoints) is read into memory and encoded by kmsg (materialize), so the
// two paths cannot disagree on what they do not both know. Every range holds
// its segment file open until the reply is released: by the writer after
// writing it or dropping it, or here when a fetch result is discarded.

import (
	"encoding/binary"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReply is a Fetch response whose record batches are file ranges.
// files holds them per partition in encoding order (topics, then their
// partitions); a partition with ranges has empty RecordBatches.
type fetchReply struct {
	*kmsg.FetchResponse
	files [][]storage.FileRange
}

var _ wire.Vectored = (*fetchReply)(nil)

// zeroCopy reports whether a fetch on req's connection reads file ranges.
func (b *Broker) zeroCopy(req *wire.Request) bool {
	return !b.opts.NoFetchZeroCopy && req.Conn.SendsFiles()
}

// releaseResults releases the file ranges of fetch results not sent.
func releaseResults(results []fetchResult) {
	for i := range results {
		storage.ReleaseRanges(results[i].files)
		results[i].files = nil
	}
}

// newFetchReply wraps resp, whose partitions' ranges are files (in
// encoding order), as a vectored reply; resp alone when no partition has
// ranges, or when resp has fields the hand encoding does not cover (then
// the ranges are read into RecordBatches).
func newFetchReply(resp *kmsg.FetchResponse, files [][]storage.FileRange) kmsg.Response {
	ranges := false
	for _, f := range files {
		ranges = ranges || len(f) > 0
	}
	if !ranges {
		return resp
	}
	r := &fetchReply{FetchResponse: resp, files: files}
	if vectorable(resp) {
		return r
	}
	defer r.Release()
	r.materialize()
	return resp
}

// vectorable reports whether AppendVectored encodes resp exactly: no
// tagged fields set, no unknown tags.
func vectorable(v *kmsg.FetchResponse) bool {
	if len(v.Brokers) > 0 || v.UnknownTags.Len() > 0 {
		return false
	}
	for i := range v.Topics {
		t := &v.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for k := range p.AbortedTransactions {
				if p.AbortedTransactions[k].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// materialize reads every range into its partition's RecordBatches (the
// copying path); a partition whose read fails answers KAFKA_STORAGE_ERROR.
// The caller releases the ranges.
func (r *fetchReply) materialize() {
	k := 0
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			if k < len(r.files) && len(r.files[k]) > 0 {
				p := &r.Topics[i].Partitions[j]
				var err error
				for _, fr := range r.files[k] {
					if p.RecordBatches, err = fr.AppendTo(p.RecordBatches); err != nil {
						p.RecordBatches, p.ErrorCode = []byte{}, kerr.KafkaStorageError.Code
						break
					}
				}
			}
			k++
		}
	}
}

// Release releases the file ranges (wire.Vectored).
func (r *fetchReply) Release() {
	for i, f := range r.files {
		storage.ReleaseRanges(f)
		r.files[i] = nil
	}
}

// AppendTo encodes the response with the records read from the files, for
// writers that are not vectored (tests). A failed read panics: the wire
// writer never calls it.
func (r *fetchReply) AppendTo(dst []byte) []byte {
	start := len(dst)
	dst, pieces := r.AppendVectored(dst, nil)
	body := append([]byte(nil), dst[start:]...)
	dst, at := dst[:start], start
	for _, pc := range pieces {
		dst = append(dst, body[at-start:pc.At-start]...)
		at = pc.At
		var err error
		if dst, err = pc.Region.(storage.FileRange).AppendTo(dst); err != nil {
			panic(err)
		}
	}
	return append(dst, body[at-start:]...)
}

// AppendVectored encodes the response as kmsg's FetchResponse.AppendTo
// does for every version (4-18), with each partition's file ranges in
// place of its records (wire.Vectored). Only vectorable responses get
// here: every tagged-field section is empty.
func (r *fetchReply) AppendVectored(dst []byte, pieces []wire.FilePiece) ([]byte, []wire.FilePiece) {
	v := r.FetchResponse
	version := v.Version
	flex := version >= 12
	be := binary.BigEndian
	if version >= 1 {
		dst = be.AppendUint32(dst, uint32(v.ThrottleMillis))
	}
	if version >= 7 {
		dst = be.AppendUint16(dst, uint16(v.ErrorCode))
		dst = be.AppendUint32(dst, uint32(v.SessionID))
	}
	dst = appendLen(dst, len(v.Topics), flex)
	k := 0
	for i := range v.Topics {
		t := &v.Topics[i]
		if version <= 12 {
			if flex {
				dst = binary.AppendUvarint(dst, uint64(len(t.Topic))+1)
			} else {
				dst = be.AppendUint16(dst, uint16(len(t.Topic)))
			}
			dst = append(dst, t.Topic...)
		} else {
			dst = append(dst, t.TopicID[:]...)
		}
		dst = appendLen(dst, len(t.Partitions), flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = be.AppendUint32(dst, uint32(p.Partition))
			dst = be.AppendUint16(dst, uint16(p.ErrorCode))
			dst = be.AppendUint64(dst, uint64(p.HighWatermark))
			if version >= 4 {
				dst = be.AppendUint64(dst, uint64(p.LastStableOffset))
			}
			if version >= 5 {
				dst = be.AppendUint64(dst, uint64(p.LogStartOffset))
			}
			if version >= 4 {
				dst = appendNullableLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil, flex)
				for _, a := range p.AbortedTransactions {
					dst = be.AppendUint64(dst, uint64(a.ProducerID))
					dst = be.AppendUint64(dst, uint64(a.FirstOffset))
					if flex {
						dst = append(dst, 0) // no tagged fields
					}
				}
			}
			if version >= 11 {
				dst = be.AppendUint32(dst, uint32(p.PreferredReadReplica))
			}
			var files []storage.FileRange
			if k < len(r.files) {
				files = r.files[k]
			}
			k++
			if len(files) == 0 {
				dst = appendNullableLen(dst, len(p.RecordBatches), p.RecordBatches == nil, flex)
				dst = append(dst, p.RecordBatches...)
			} else {
				n := 0
				for _, fr := range files {
					n += int(fr.Len())
				}
				dst = appendNullableLen(dst, n, false, flex)
				for _, fr := range files {
					pieces = append(pieces, wire.FilePiece{At: len(dst), Region: fr})
				}
			}
			if flex {
				dst = append(dst, 0) // partition tagged fields (vectorable: none)
			}
		}
		if flex {
			dst = append(dst, 0) // topic tagged fields
		}
	}
	if flex {
		dst = append(dst, 0) // response tagged fields (no node endpoints)
	}
	return dst, pieces
}

// appendLen appends an array or bytes length: compact (uvarint of n+1) in
// flexible versions, else int32.
func appendLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// appendNullableLen is appendLen with null: 0 compact, -1 classic.
func appendNullableLen(dst []byte, n int, null, flex bool) []byte {
	if !null {
		return appendLen(dst, n, flex)
	}
	if flex {
		return append(dst, 0)
	}
	return binary.BigEndian.AppendUint32(dst, 0xffffffff)
}
