package group

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	topicA = [16]byte{0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xaf}
	topicB = [16]byte{0xb0, 15: 0xbf}
)

// TestCGRecordBytesAsKafkaSchemas decodes bytes written out by hand from
// Kafka's JSON schemas (group-coordinator/src/main/resources/common/message),
// including tagged fields a newer Kafka adds, and checks the known values;
// the encoders produce the same bytes where no tagged field is involved.
func TestCGRecordBytesAsKafkaSchemas(t *testing.T) {
	// ConsumerGroupCurrentMemberAssignmentKey (key version 8): group "g1",
	// member "m1", non-flexible int16-length strings.
	key := unhex(t, "0008 0002 6731 0002 6d31")
	k, err := decodeCGKey(key)
	if err != nil || k != (cgKey{Type: keyCGCurrent, Group: "g1", Member: "m1"}) {
		t.Fatalf("key %+v %v", k, err)
	}
	if !bytes.Equal(k.encode(), key) {
		t.Fatalf("key encodes as %x", k.encode())
	}
	// ConsumerGroupMetadataKey (3) has the group only.
	if k, err := decodeCGKey(unhex(t, "0003 0002 6731")); err != nil || k != (cgKey{Type: keyCGMetadata, Group: "g1"}) {
		t.Fatalf("metadata key %+v %v", k, err)
	}

	// ConsumerGroupMetadataValue v0: Epoch 7, then the tagged field
	// MetadataHash (tag 0, int64) that Kafka 4.1 writes.
	meta := unhex(t, "0000 00000007 01 00 08 0102030405060708")
	if e, err := decodeCGEpoch(meta); err != nil || e != 7 {
		t.Fatalf("epoch %d %v", e, err)
	}
	if got := encodeCGEpoch(7); !bytes.Equal(got, unhex(t, "0000 00000007 00")) {
		t.Fatalf("epoch encodes as %x", got)
	}

	// ConsumerGroupCurrentMemberAssignmentValue v0: epoch 5, previous 4,
	// state 1 (UNREVOKED_PARTITIONS), assigned [topicA: 0, 1] with the
	// KIP-1251 tagged AssignmentEpochs [5, 5], pending revocation
	// [topicB: 2].
	cur := unhex(t, "0000 00000005 00000004 01"+
		"02"+hex.EncodeToString(topicA[:])+"03 00000000 00000001"+"01 00 09 03 00000005 00000005"+
		"02"+hex.EncodeToString(topicB[:])+"02 00000002 00"+
		"00")
	cv, err := decodeCGCurrent(cur)
	want := &cgCurrentValue{MemberEpoch: 5, PreviousMemberEpoch: 4, State: memberStateUnrevokedPartitions,
		Assigned:          []cgTopicPartitions{{TopicID: topicA, Partitions: []int32{0, 1}}},
		PendingRevocation: []cgTopicPartitions{{TopicID: topicB, Partitions: []int32{2}}}}
	if err != nil || !reflect.DeepEqual(cv, want) {
		t.Fatalf("current assignment %+v %v", cv, err)
	}

	// ConsumerGroupMemberMetadataValue v0: instance null, rack "r",
	// client "c", host "/h", topics ["x", "y"], regex null, rebalance
	// timeout 30000, assignor "uniform", tagged ClassicMemberMetadata.
	mem := unhex(t, "0000 00 0272 0263 032f68 03 0278 0279 00 00007530 08756e69666f726d"+
		"01 00 02 01 00")
	mv, err := decodeCGMember(mem)
	if err != nil || mv.InstanceID != nil || *mv.RackID != "r" || mv.ClientID != "c" || mv.ClientHost != "/h" ||
		!reflect.DeepEqual(mv.SubscribedTopicNames, []string{"x", "y"}) || mv.SubscribedTopicRegex != nil ||
		mv.RebalanceTimeoutMs != 30000 || *mv.ServerAssignor != "uniform" {
		t.Fatalf("member %+v %v", mv, err)
	}
	// The same bytes but an empty tagged section.
	if got, want := encodeCGMember(mv), append(mem[:len(mem)-5:len(mem)-5], 0); !bytes.Equal(got, want) {
		t.Fatalf("member encodes as %x, want %x", got, want)
	}

	// ConsumerGroupTargetAssignmentMemberValue v0: [topicA: 3].
	tgt := unhex(t, "0000 02"+hex.EncodeToString(topicA[:])+"02 00000003 00 00")
	if tv, err := decodeCGTargetMember(tgt); err != nil || !reflect.DeepEqual(tv, []cgTopicPartitions{{TopicID: topicA, Partitions: []int32{3}}}) {
		t.Fatalf("target %+v %v", tv, err)
	}
	if got := encodeCGTargetMember([]cgTopicPartitions{{TopicID: topicA, Partitions: []int32{3}}}); !bytes.Equal(got, tgt) {
		t.Fatalf("target encodes as %x", got)
	}

	// ConsumerGroupPartitionMetadataValue v0: [topicA "t" 2 partitions,
	// PartitionMetadata [partition 0, racks ["r"]]].
	pm := unhex(t, "0000 02"+hex.EncodeToString(topicA[:])+"0274 00000002 02 00000000 02 0272 00 00 00")
	if ts, err := decodeCGPartitionMetadata(pm); err != nil || !reflect.DeepEqual(ts, []cgTopicMetadata{{TopicID: topicA, TopicName: "t", NumPartitions: 2}}) {
		t.Fatalf("partition metadata %+v %v", ts, err)
	}

	// A newer value version is not ours to read.
	if _, err := decodeCGCurrent(append([]byte{0, 1}, cur[2:]...)); err == nil {
		t.Fatal("value version 1 decoded")
	}
	// Truncated bytes never decode.
	for i := range cur {
		if _, err := decodeCGCurrent(cur[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

func TestCGRecordRoundTrip(t *testing.T) {
	inst, re, asg := "i", "a.*", "range"
	m := &cgMemberValue{InstanceID: &inst, ClientID: "c", ClientHost: "h", SubscribedTopicNames: []string{"a", "b"},
		SubscribedTopicRegex: &re, RebalanceTimeoutMs: 100, ServerAssignor: &asg}
	if got, err := decodeCGMember(encodeCGMember(m)); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("member %+v %v", got, err)
	}
	c := &cgCurrentValue{MemberEpoch: -2, PreviousMemberEpoch: 9, State: memberStateUnreleasedPartitions,
		Assigned: []cgTopicPartitions{{TopicID: topicA, Partitions: []int32{1, 2}}, {TopicID: topicB, Partitions: []int32{}}}}
	if got, err := decodeCGCurrent(encodeCGCurrent(c)); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("current %+v %v", got, err)
	}
	ts := []cgTopicMetadata{{TopicID: topicA, TopicName: "a", NumPartitions: 3}, {TopicID: topicB, TopicName: "b", NumPartitions: 1}}
	if got, err := decodeCGPartitionMetadata(encodeCGPartitionMetadata(ts)); err != nil || !reflect.DeepEqual(got, ts) {
		t.Fatalf("partition metadata %+v %v", got, err)
	}
	for _, k := range []cgKey{{Type: 3, Group: "g"}, {Type: 4, Group: "g"}, {Type: 5, Group: "g", Member: "m"}, {Type: 6, Group: ""}, {Type: 7, Group: "g", Member: "m"}, {Type: 8, Group: "g", Member: ""}} {
		if got, err := decodeCGKey(k.encode()); err != nil || got != k {
			t.Fatalf("key %+v: %+v %v", k, got, err)
		}
	}
}

// The decoders read persisted bytes: none panics on any input, and what
// decodes encodes to bytes that decode to the same value.

func FuzzCGKey(f *testing.F) {
	f.Add(cgKey{Type: 8, Group: "g", Member: "m"}.encode())
	f.Add(cgKey{Type: 3, Group: "g"}.encode())
	f.Add([]byte{0, 5, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeCGKey(b)
		if err != nil {
			return
		}
		if k2, err := decodeCGKey(k.encode()); err != nil || k2 != k {
			t.Fatalf("%x: %+v then %+v %v", b, k, k2, err)
		}
	})
}

func FuzzCGEpoch(f *testing.F) {
	f.Add(encodeCGEpoch(3))
	f.Add([]byte{0, 0, 0, 0, 0, 7, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeCGEpoch(b)
		if err != nil {
			return
		}
		if e2, err := decodeCGEpoch(encodeCGEpoch(e)); err != nil || e2 != e {
			t.Fatalf("%x: %d then %d %v", b, e, e2, err)
		}
	})
}

func FuzzCGPartitionMetadata(f *testing.F) {
	f.Add(encodeCGPartitionMetadata([]cgTopicMetadata{{TopicID: topicA, TopicName: "t", NumPartitions: 2}}))
	f.Add(encodeCGPartitionMetadata(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCGPartitionMetadata(b)
		if err != nil {
			return
		}
		if v2, err := decodeCGPartitionMetadata(encodeCGPartitionMetadata(v)); err != nil || !reflect.DeepEqual(v2, v) {
			t.Fatalf("%x: %+v then %+v %v", b, v, v2, err)
		}
	})
}

func FuzzCGMember(f *testing.F) {
	inst := "i"
	f.Add(encodeCGMember(&cgMemberValue{InstanceID: &inst, ClientID: "c", SubscribedTopicNames: []string{"t"}, RebalanceTimeoutMs: 5}))
	f.Add(encodeCGMember(&cgMemberValue{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCGMember(b)
		if err != nil {
			return
		}
		if v2, err := decodeCGMember(encodeCGMember(v)); err != nil || !reflect.DeepEqual(v2, v) {
			t.Fatalf("%x: %+v then %+v %v", b, v, v2, err)
		}
	})
}

func FuzzCGTargetMember(f *testing.F) {
	f.Add(encodeCGTargetMember([]cgTopicPartitions{{TopicID: topicA, Partitions: []int32{0, 1}}}))
	f.Add(encodeCGTargetMember(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCGTargetMember(b)
		if err != nil {
			return
		}
		if v2, err := decodeCGTargetMember(encodeCGTargetMember(v)); err != nil || !reflect.DeepEqual(v2, v) {
			t.Fatalf("%x: %+v then %+v %v", b, v, v2, err)
		}
	})
}

func FuzzCGCurrent(f *testing.F) {
	f.Add(encodeCGCurrent(&cgCurrentValue{MemberEpoch: 3, PreviousMemberEpoch: 2, Assigned: []cgTopicPartitions{{TopicID: topicA, Partitions: []int32{0}}}}))
	f.Add(encodeCGCurrent(&cgCurrentValue{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCGCurrent(b)
		if err != nil {
			return
		}
		if v2, err := decodeCGCurrent(encodeCGCurrent(v)); err != nil || !reflect.DeepEqual(v2, v) {
			t.Fatalf("%x: %+v then %+v %v", b, v, v2, err)
		}
	})
}
