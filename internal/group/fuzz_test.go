package group

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzApplyRecord: __consumer_offsets records are persisted bytes that other
// tools can write too (a client cannot produce there, but a data dir can be
// copied around); replaying any key and value never panics, and a record
// this package wrote reads back as written.
func FuzzApplyRecord(f *testing.F) {
	f.Add(encodeOffsetKey("group", TP{"topic", 3}), encodeOffsetValue(Offset{Offset: 42, LeaderEpoch: 1, Metadata: "m", CommitMs: 7}))
	gk := kmsg.GroupMetadataKey{Version: keyGroupMetadata, Group: "g"}
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = valueGroupMetadata
	gv.Protocol, gv.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("m1")
	gv.Members = []kmsg.GroupMetadataValueMember{{MemberID: "m1", SessionTimeoutMillis: 1000, Assignment: []byte{1}}}
	f.Add(gk.AppendTo(nil), gv.AppendTo(nil))
	f.Add([]byte{0, 1, 0, 0}, []byte{0, 3})
	f.Add([]byte{0, 2, 0xff, 0xff}, []byte(nil))
	f.Add([]byte{0, 9}, []byte{1, 2, 3})
	f.Add(cgKey{Type: keyCGMetadata, Group: "g"}.encode(), encodeCGEpoch(4))
	f.Add(cgKey{Type: keyCGCurrent, Group: "g", Member: "m"}.encode(),
		encodeCGCurrent(&cgCurrentValue{MemberEpoch: 4, Assigned: []cgTopicPartitions{{Partitions: []int32{0}}}}))
	f.Add(cgKey{Type: keyCGMember, Group: "g", Member: "m"}.encode(), []byte(nil))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		o := &offsetStore{lg: slog.New(slog.DiscardHandler), groups: map[string]map[TP]*offsetEntry{}, loaded: map[string]*loadedGroup{}, loadedCG: map[string]*loadedCGroup{}}
		o.applyRecord(10, &kmsg.Record{Key: k, Value: v})
		var key kmsg.OffsetCommitKey
		var val kmsg.OffsetCommitValue
		if key.ReadFrom(k) != nil || key.Version < 0 || key.Version > keyOffsetCommit || v == nil || val.ReadFrom(v) != nil {
			return
		}
		got := o.fetch(key.Group, []TP{{key.Topic, key.Partition}})[TP{key.Topic, key.Partition}]
		if got.Offset != val.Offset || got.Metadata != val.Metadata || got.CommitMs != val.CommitTimestamp {
			t.Fatalf("record %x=%x read back as %+v", k, v, got)
		}
	})
}
