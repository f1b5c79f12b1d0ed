package group

// Wire schemas of the KIP-848 consumer-group records of __consumer_offsets,
// as Kafka's group coordinator writes them (kmsg has no types for them).
// A key is its record type as an int16 (the "key version") followed by the
// key's fields in the non-flexible encoding (int16-length strings); a value
// is an int16 value version (0) followed by the fields in the flexible
// encoding: compact strings and arrays (uvarint length + 1, 0 = null),
// 16-byte uuids, and a tagged-field section after every struct. Tagged
// fields are written empty and skipped on read (MetadataHash of Kafka 4.1,
// AssignmentEpochs of KIP-1251, ClassicMemberMetadata).
//
//	3 ConsumerGroupMetadata             key (group)          value: Epoch int32
//	4 ConsumerGroupPartitionMetadata    key (group)          value: [TopicId uuid, TopicName string, NumPartitions int32, [Partition int32, Racks []string]]
//	5 ConsumerGroupMemberMetadata       key (group, member)  value: InstanceId string?, RackId string?, ClientId, ClientHost string, SubscribedTopicNames []string, SubscribedTopicRegex string?, RebalanceTimeoutMs int32, ServerAssignor string?
//	6 ConsumerGroupTargetAssignmentMetadata key (group)      value: AssignmentEpoch int32
//	7 ConsumerGroupTargetAssignmentMember   key (group, member) value: [TopicId uuid, Partitions []int32]
//	8 ConsumerGroupCurrentMemberAssignment  key (group, member) value: MemberEpoch, PreviousMemberEpoch int32, State int8, AssignedPartitions, PartitionsPendingRevocation [TopicId uuid, Partitions []int32]

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Key versions (Kafka's CoordinatorRecordType) of the consumer-group records.
const (
	keyCGMetadata          = 3
	keyCGPartitionMetadata = 4
	keyCGMember            = 5
	keyCGTargetMetadata    = 6
	keyCGTargetMember      = 7
	keyCGCurrent           = 8
)

// Member states of ConsumerGroupCurrentMemberAssignmentValue.State
// (Kafka's MemberState).
const (
	memberStateStable               = 0
	memberStateUnrevokedPartitions  = 1
	memberStateUnreleasedPartitions = 2
)

var errBadRecord = errors.New("group: malformed consumer group record")

// cgKey is the key of a consumer-group record; Member is empty for the
// group-level records (3, 4, 6).
type cgKey struct {
	Type          int16
	Group, Member string
}

func cgKeyHasMember(typ int16) bool {
	return typ == keyCGMember || typ == keyCGTargetMember || typ == keyCGCurrent
}

func (k cgKey) encode() []byte {
	b := kbin.AppendInt16(nil, k.Type)
	b = kbin.AppendString(b, k.Group)
	if cgKeyHasMember(k.Type) {
		b = kbin.AppendString(b, k.Member)
	}
	return b
}

func decodeCGKey(b []byte) (cgKey, error) {
	r := kbin.Reader{Src: b}
	k := cgKey{Type: r.Int16()}
	if k.Type < keyCGMetadata || k.Type > keyCGCurrent {
		return k, errBadRecord
	}
	k.Group = nonNegString(&r)
	if cgKeyHasMember(k.Type) {
		k.Member = nonNegString(&r)
	}
	if !r.Ok() {
		return k, errBadRecord
	}
	return k, nil
}

// nonNegString reads an int16-length string; a null (-1) is malformed.
func nonNegString(r *kbin.Reader) string {
	l := r.Int16()
	return string(r.Span(int(l)))
}

// cgTopicPartitions is one topic of an assignment in the records.
type cgTopicPartitions struct {
	TopicID    [16]byte
	Partitions []int32
}

type cgTopicMetadata struct {
	TopicID       [16]byte
	TopicName     string
	NumPartitions int32
	// PartitionRacks is deprecated in Kafka 4.0; read and written empty.
}

type cgMemberValue struct {
	InstanceID, RackID   *string
	ClientID, ClientHost string
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	RebalanceTimeoutMs   int32
	ServerAssignor       *string
}

type cgCurrentValue struct {
	MemberEpoch, PreviousMemberEpoch int32
	State                            int8
	Assigned, PendingRevocation      []cgTopicPartitions
}

// Encoders. Every value starts with its version, 0.

func encodeCGEpoch(epoch int32) []byte {
	b := kbin.AppendInt16(nil, 0)
	b = kbin.AppendInt32(b, epoch)
	return kbin.AppendUvarint(b, 0)
}

func encodeCGPartitionMetadata(topics []cgTopicMetadata) []byte {
	b := kbin.AppendInt16(nil, 0)
	b = kbin.AppendCompactArrayLen(b, len(topics))
	for _, t := range topics {
		b = kbin.AppendUuid(b, t.TopicID)
		b = kbin.AppendCompactString(b, t.TopicName)
		b = kbin.AppendInt32(b, t.NumPartitions)
		b = kbin.AppendCompactArrayLen(b, 0)
		b = kbin.AppendUvarint(b, 0)
	}
	return kbin.AppendUvarint(b, 0)
}

func encodeCGMember(v *cgMemberValue) []byte {
	b := kbin.AppendInt16(nil, 0)
	b = kbin.AppendCompactNullableString(b, v.InstanceID)
	b = kbin.AppendCompactNullableString(b, v.RackID)
	b = kbin.AppendCompactString(b, v.ClientID)
	b = kbin.AppendCompactString(b, v.ClientHost)
	b = kbin.AppendCompactArrayLen(b, len(v.SubscribedTopicNames))
	for _, s := range v.SubscribedTopicNames {
		b = kbin.AppendCompactString(b, s)
	}
	b = kbin.AppendCompactNullableString(b, v.SubscribedTopicRegex)
	b = kbin.AppendInt32(b, v.RebalanceTimeoutMs)
	b = kbin.AppendCompactNullableString(b, v.ServerAssignor)
	return kbin.AppendUvarint(b, 0)
}

func appendTopicPartitions(b []byte, tps []cgTopicPartitions) []byte {
	b = kbin.AppendCompactArrayLen(b, len(tps))
	for _, t := range tps {
		b = kbin.AppendUuid(b, t.TopicID)
		b = kbin.AppendCompactArrayLen(b, len(t.Partitions))
		for _, p := range t.Partitions {
			b = kbin.AppendInt32(b, p)
		}
		b = kbin.AppendUvarint(b, 0)
	}
	return b
}

func encodeCGTargetMember(tps []cgTopicPartitions) []byte {
	b := kbin.AppendInt16(nil, 0)
	b = appendTopicPartitions(b, tps)
	return kbin.AppendUvarint(b, 0)
}

func encodeCGCurrent(v *cgCurrentValue) []byte {
	b := kbin.AppendInt16(nil, 0)
	b = kbin.AppendInt32(b, v.MemberEpoch)
	b = kbin.AppendInt32(b, v.PreviousMemberEpoch)
	b = kbin.AppendInt8(b, v.State)
	b = appendTopicPartitions(b, v.Assigned)
	b = appendTopicPartitions(b, v.PendingRevocation)
	return kbin.AppendUvarint(b, 0)
}

// Decoders. A value version other than 0 is an error (a newer Kafka's
// record: the caller skips it).

func valueReader(b []byte) (*kbin.Reader, error) {
	r := &kbin.Reader{Src: b}
	if v := r.Int16(); !r.Ok() || v != 0 {
		return nil, errBadRecord
	}
	return r, nil
}

// skipTags skips a tagged-field section.
func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
}

// arrayLen reads a non-nullable compact array length.
func arrayLen(r *kbin.Reader) int {
	n := r.CompactArrayLen()
	if n < 0 {
		r.Span(-1) // invalidates the reader
		return 0
	}
	return int(n)
}

func done(r *kbin.Reader) error {
	if !r.Ok() {
		return errBadRecord
	}
	return nil
}

// decodeCGEpoch decodes the values of records 3 and 6 (a single int32 and
// tagged fields).
func decodeCGEpoch(b []byte) (int32, error) {
	r, err := valueReader(b)
	if err != nil {
		return 0, err
	}
	e := r.Int32()
	skipTags(r)
	return e, done(r)
}

func decodeCGPartitionMetadata(b []byte) ([]cgTopicMetadata, error) {
	r, err := valueReader(b)
	if err != nil {
		return nil, err
	}
	var out []cgTopicMetadata
	for n := arrayLen(r); n > 0 && r.Ok(); n-- {
		t := cgTopicMetadata{TopicID: r.Uuid(), TopicName: r.CompactString(), NumPartitions: r.Int32()}
		for np := arrayLen(r); np > 0 && r.Ok(); np-- {
			r.Int32()
			for nr := arrayLen(r); nr > 0 && r.Ok(); nr-- {
				r.CompactString()
			}
			skipTags(r)
		}
		skipTags(r)
		out = append(out, t)
	}
	skipTags(r)
	return out, done(r)
}

func decodeCGMember(b []byte) (*cgMemberValue, error) {
	r, err := valueReader(b)
	if err != nil {
		return nil, err
	}
	v := &cgMemberValue{InstanceID: r.CompactNullableString(), RackID: r.CompactNullableString(), ClientID: r.CompactString(), ClientHost: r.CompactString()}
	for n := arrayLen(r); n > 0 && r.Ok(); n-- {
		v.SubscribedTopicNames = append(v.SubscribedTopicNames, r.CompactString())
	}
	v.SubscribedTopicRegex = r.CompactNullableString()
	v.RebalanceTimeoutMs = r.Int32()
	v.ServerAssignor = r.CompactNullableString()
	skipTags(r)
	return v, done(r)
}

func readTopicPartitions(r *kbin.Reader) []cgTopicPartitions {
	var out []cgTopicPartitions
	for n := arrayLen(r); n > 0 && r.Ok(); n-- {
		t := cgTopicPartitions{TopicID: r.Uuid()}
		np := arrayLen(r)
		if np*4 > len(r.Src) {
			r.Span(-1)
			break
		}
		t.Partitions = make([]int32, 0, np)
		for ; np > 0; np-- {
			t.Partitions = append(t.Partitions, r.Int32())
		}
		skipTags(r)
		out = append(out, t)
	}
	return out
}

func decodeCGTargetMember(b []byte) ([]cgTopicPartitions, error) {
	r, err := valueReader(b)
	if err != nil {
		return nil, err
	}
	tps := readTopicPartitions(r)
	skipTags(r)
	return tps, done(r)
}

func decodeCGCurrent(b []byte) (*cgCurrentValue, error) {
	r, err := valueReader(b)
	if err != nil {
		return nil, err
	}
	v := &cgCurrentValue{MemberEpoch: r.Int32(), PreviousMemberEpoch: r.Int32(), State: r.Int8()}
	v.Assigned = readTopicPartitions(r)
	v.PendingRevocation = readTopicPartitions(r)
	skipTags(r)
	return v, done(r)
}
