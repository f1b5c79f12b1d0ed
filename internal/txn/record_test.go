package txn

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fullEntry sets every field a record carries.
func fullEntry() Entry {
	return Entry{
		ID: "app-1", PID: 7, Epoch: 3, TimedOut: true, TimeoutMs: 60000, Status: PrepareCommit,
		StartMs: 1000, UpdateMs: 2000,
		Partitions: []TP{{"a", 1}, {"a", 0}, {"b", 4}},
		Groups:     []string{"g1", "g2"},
		Offsets: map[string][]Offset{
			"g1": {{TP{"a", 0}, 10, 2, "m"}, {TP{"b", 4}, 11, -1, ""}},
			"g2": {{TP{"a", 1}, 12, 0, "x"}},
		},
		Marker:        &Producer{6, 32767},
		Prev:          &Producer{6, 32766},
		OffsetsLogged: true,
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		fullEntry(),
		{ID: "empty", PID: 1, TimeoutMs: 100, Status: Empty, UpdateMs: 5},
		{ID: "done", PID: 1, Epoch: 2, TimeoutMs: 100, Status: CompleteAbort, UpdateMs: 5, Prev: &Producer{1, 1}},
	} {
		raw, err := encodeValue(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeValue(e.ID, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, e)
		}
	}
}

// TestRecordsInKafkaFormat: Kafka's decoders read the records (its fields
// set as Kafka sets them, ours in a tag it skips) from the partition Kafka
// would pick for the transactional id.
func TestRecordsInKafkaFormat(t *testing.T) {
	dir := t.TempDir()
	parts := statelogtest.Open(t, dir, "__transaction_state", testPartitions)
	m := &fakeMarkers{}
	c := openOpts(t, dir, m, func(o *Options) { o.State = parts })
	defer c.Close()
	const id = "orders-writer"
	pid, epoch, _ := c.InitProducerID(id, 60000, -1, -1)
	wantErr(t, "add", c.AddPartitions(id, pid, epoch, []TP{{"t", 2}, {"u", 0}, {"t", 1}}), nil)
	want := statelog.PartitionFor(id, testPartitions)
	var states []kmsg.TransactionState
	for i, p := range parts {
		p.Replay(func(off int64, r *kmsg.Record) error {
			if i != want {
				t.Errorf("record in partition %d, want %d", i, want)
			}
			var k kmsg.TxnMetadataKey
			var v kmsg.TxnMetadataValue
			if err := k.ReadFrom(r.Key); err != nil || k.Version != 0 || k.TransactionalID != id {
				t.Fatalf("key %+v: %v", k, err)
			}
			if err := v.ReadFrom(r.Value); err != nil || v.Version != 1 || v.ProducerID != pid || v.TimeoutMillis != 60000 {
				t.Fatalf("value %+v: %v", v, err)
			}
			if v.UnknownTags.Len() != 1 {
				t.Fatalf("%d unknown tags", v.UnknownTags.Len())
			}
			states = append(states, v.State)
			switch v.State {
			case 0: // Empty: null partitions, no start, as Kafka writes it
				if v.Topics != nil || v.StartTimestamp != -1 {
					t.Fatalf("Empty record %+v", v)
				}
			case 1:
				if len(v.Topics) != 2 || v.Topics[0].Topic != "t" || !reflect.DeepEqual(v.Topics[0].Partitions, []int32{2, 1}) ||
					v.StartTimestamp <= 0 || v.LastUpdateTimestamp < v.StartTimestamp {
					t.Fatalf("Ongoing record %+v", v)
				}
			}
			return nil
		})
	}
	if !reflect.DeepEqual(states, []kmsg.TransactionState{0, 1}) {
		t.Fatalf("states %v, want Empty then Ongoing", states)
	}
}

func FuzzDecodeValue(f *testing.F) {
	e := fullEntry()
	raw, _ := encodeValue(&e)
	f.Add(raw)
	e = Entry{ID: "x", Status: Empty}
	raw, _ = encodeValue(&e)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := decodeValue("id", raw)
		if err != nil {
			return
		}
		// What decodes encodes, and that decodes to a state that
		// encodes the same (partitions come back grouped by topic).
		again, err := encodeValue(&e)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		e2, err := decodeValue("id", again)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", e, err)
		}
		if third, _ := encodeValue(&e2); !bytes.Equal(third, again) {
			t.Fatalf("%+v and %+v encode differently", e, e2)
		}
	})
}
