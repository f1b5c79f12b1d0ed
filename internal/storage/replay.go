package storage

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReplayBatch says, for ReplayRecords, what to do with a batch before its
// records are decoded.
type ReplayBatch func(h *BatchHeader) (decode bool, err error)

// ReplayRecords calls fn with every record of every batch from the log start
// up to upTo (the log end if upTo < 0), in offset order, with the record's
// absolute offset. It is the one replay loop of the internal logs built on
// this package (the coordinators' internal topics and the formats they and
// the metadata migrate from): each reads its state back with it rather than
// walking batches itself. batch, when set, sees every header first and can
// skip a batch (control batches, aborted transactional data) or stop the
// replay with an error. Compressed batches are decompressed. The record and
// its key and value alias a buffer that is reused: fn copies what it keeps.
func ReplayRecords(l *Log, upTo int64, batch ReplayBatch, fn func(offset int64, r *kmsg.Record) error) error {
	if upTo < 0 {
		upTo = l.LogEndOffset()
	}
	const chunk = 1 << 20
	buf := make([]byte, 0, chunk)
	var err error
	for off := l.LogStartOffset(); off < upTo; {
		buf, err = l.Read(off, chunk, upTo, buf[:0])
		if err != nil {
			return fmt.Errorf("storage: replay %s at offset %d: %w", l.Dir(), off, err)
		}
		if len(buf) == 0 {
			return nil
		}
		err = SplitBatches(buf, func(b []byte) error {
			h, err := ParseBatchHeader(b)
			if err != nil {
				return err
			}
			off = h.NextOffset()
			if batch != nil {
				decode, err := batch(&h)
				if err != nil || !decode {
					return err
				}
			}
			return DecodeRecords(b, Decompress, func(r *kmsg.Record) error {
				return fn(h.BaseOffset+int64(r.OffsetDelta), r)
			})
		})
		if err != nil {
			return fmt.Errorf("storage: replay %s: %w", l.Dir(), err)
		}
	}
	return nil
}
