package txn

// Records of __transaction_state, in Kafka's schemas (TransactionLog):
//
//	key:   TxnMetadataKey v0 (transactional id)
//	value: TxnMetadataValue v1 (flexible): producer id and epoch, timeout,
//	       state (Kafka's TransactionState numbering), partitions by topic
//	       (null when Empty, as Kafka writes it), last update and start
//	       timestamps (-1 when no transaction was started), and the tagged
//	       fields previous producer id (Entry.Prev), next producer
//	       id/epoch (always -1: the exhausted epoch is Entry.Marker) and
//	       client transaction version (2 once a KIP-890 EndTxn set Prev,
//	       else 0: the coordinator does not track it otherwise)
//	null value: a tombstone, the id expired
//
// What Chronik keeps beyond Kafka's record travels in one tagged field,
// extrasTag, that Kafka's decoders skip as unknown (see doc.go for why):
//
//	int8   extras version (0)
//	int8   flags: 1 TimedOut, 2 OffsetsLogged, 4 Marker set, 8 Prev set
//	[Marker: int64 producer id, int16 epoch]
//	[Prev:   int64 producer id, int16 epoch]
//	compact array of groups (compact strings)
//	compact array of staged offsets by group: compact string group,
//	    compact array of (compact string topic, int32 partition,
//	    int64 offset, int32 leader epoch, compact string metadata)

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	keyVersion   = 0
	valueVersion = 1
	// extrasTag is far above Kafka's tags (0-3 so far), so a tag Kafka
	// adds later cannot collide with it.
	extrasTag     = 10000
	extrasVersion = 0
)

const (
	flagTimedOut = 1 << iota
	flagOffsetsLogged
	flagMarker
	flagPrev
)

var errBadRecord = errors.New("txn: undecodable __transaction_state record")

func encodeKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// decodeKey returns the transactional id of a record key.
func decodeKey(raw []byte) (string, error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(raw); err != nil {
		return "", fmt.Errorf("%w: key: %v", errBadRecord, err)
	}
	if k.Version != keyVersion {
		return "", fmt.Errorf("%w: key version %d", errBadRecord, k.Version)
	}
	return k.TransactionalID, nil
}

// encodeValue encodes e as Kafka's TxnMetadataValue with the extras tag.
func encodeValue(e *Entry) ([]byte, error) {
	st, err := kmsg.ParseTransactionState(string(e.Status))
	if err != nil {
		return nil, fmt.Errorf("txn: encode %q: status %q", e.ID, e.Status)
	}
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, v.State = e.PID, e.Epoch, e.TimeoutMs, st
	v.LastUpdateTimestamp, v.StartTimestamp = e.UpdateMs, -1
	if e.StartMs > 0 {
		v.StartTimestamp = e.StartMs
	}
	if e.Status != Empty {
		v.Topics = []kmsg.TxnMetadataValueTopic{} // Kafka's non-null, possibly empty list
		for _, tp := range e.Partitions {
			i := slices.IndexFunc(v.Topics, func(t kmsg.TxnMetadataValueTopic) bool { return t.Topic == tp.Topic })
			if i < 0 {
				i = len(v.Topics)
				v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			}
			v.Topics[i].Partitions = append(v.Topics[i].Partitions, tp.Partition)
		}
	}
	if e.Prev != nil {
		v.PreviousProducerID = e.Prev.PID
		v.ClientTransactionVersion = 2 // only EndTxn v5+ (KIP-890 part 2) sets Prev
	}
	v.UnknownTags.Set(extrasTag, appendExtras(nil, e))
	return v.AppendTo(nil), nil
}

func appendExtras(dst []byte, e *Entry) []byte {
	var flags int8
	if e.TimedOut {
		flags |= flagTimedOut
	}
	if e.OffsetsLogged {
		flags |= flagOffsetsLogged
	}
	if e.Marker != nil {
		flags |= flagMarker
	}
	if e.Prev != nil {
		flags |= flagPrev
	}
	dst = kbin.AppendInt8(dst, extrasVersion)
	dst = kbin.AppendInt8(dst, flags)
	for _, p := range []*Producer{e.Marker, e.Prev} {
		if p != nil {
			dst = kbin.AppendInt16(kbin.AppendInt64(dst, p.PID), p.Epoch)
		}
	}
	dst = kbin.AppendCompactArrayLen(dst, len(e.Groups))
	for _, g := range e.Groups {
		dst = kbin.AppendCompactString(dst, g)
	}
	groups := sortedKeys(e.Offsets)
	dst = kbin.AppendCompactArrayLen(dst, len(groups))
	for _, g := range groups {
		dst = kbin.AppendCompactString(dst, g)
		dst = kbin.AppendCompactArrayLen(dst, len(e.Offsets[g]))
		for _, o := range e.Offsets[g] {
			dst = kbin.AppendCompactString(dst, o.Topic)
			dst = kbin.AppendInt32(dst, o.Partition)
			dst = kbin.AppendInt64(dst, o.Offset)
			dst = kbin.AppendInt32(dst, o.LeaderEpoch)
			dst = kbin.AppendCompactString(dst, o.Metadata)
		}
	}
	return dst
}

// decodeValue decodes id's record value. A record without the extras tag
// (written by Kafka, or by a tool) decodes to Kafka's fields alone.
func decodeValue(id string, raw []byte) (Entry, error) {
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(raw); err != nil {
		return Entry{}, fmt.Errorf("%w: value of %q: %v", errBadRecord, id, err)
	}
	st := v.State.String()
	if !KnownStatus(st) {
		return Entry{}, fmt.Errorf("%w: value of %q: state %d", errBadRecord, id, v.State)
	}
	e := Entry{ID: id, PID: v.ProducerID, Epoch: v.ProducerEpoch, TimeoutMs: v.TimeoutMillis, Status: Status(st),
		StartMs: max(v.StartTimestamp, 0), UpdateMs: v.LastUpdateTimestamp}
	if e.Status != Empty {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				e.Partitions = append(e.Partitions, TP{Topic: t.Topic, Partition: p})
			}
		}
	}
	var err error
	v.UnknownTags.Each(func(tag uint32, b []byte) {
		if tag == extrasTag && err == nil {
			err = readExtras(&e, b)
		}
	})
	if err != nil {
		return Entry{}, fmt.Errorf("%w: extras of %q: %v", errBadRecord, id, err)
	}
	return e, nil
}

func readExtras(e *Entry, b []byte) error {
	r := kbin.Reader{Src: b}
	if ver := r.Int8(); ver != extrasVersion {
		return fmt.Errorf("version %d", ver)
	}
	flags := r.Int8()
	e.TimedOut, e.OffsetsLogged = flags&flagTimedOut != 0, flags&flagOffsetsLogged != 0
	readProducer := func() *Producer {
		pid := r.Int64()
		return &Producer{PID: pid, Epoch: r.Int16()}
	}
	if flags&flagMarker != 0 {
		e.Marker = readProducer()
	}
	if flags&flagPrev != 0 {
		e.Prev = readProducer()
	}
	for range max(r.CompactArrayLen(), 0) {
		e.Groups = append(e.Groups, r.CompactString())
	}
	for range max(r.CompactArrayLen(), 0) {
		g := r.CompactString()
		if e.Offsets == nil {
			e.Offsets = map[string][]Offset{}
		}
		n := max(r.CompactArrayLen(), 0)
		offs := make([]Offset, 0, n)
		for range n {
			var o Offset
			o.Topic = r.CompactString()
			o.Partition, o.Offset, o.LeaderEpoch = r.Int32(), r.Int64(), r.Int32()
			o.Metadata = r.CompactString()
			offs = append(offs, o)
		}
		e.Offsets[g] = offs
	}
	if err := r.Complete(); err != nil {
		return err
	}
	if len(r.Src) != 0 {
		return fmt.Errorf("%d bytes left over", len(r.Src))
	}
	return nil
}
