package metadata

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzApplyRecord: any bytes as a metadata log entry (a forwarded write, a
// damaged log) neither panic the state machine nor break the image: every
// topic is found by name and by id, with at least one partition, and every
// broker under its own id.
func FuzzApplyRecord(f *testing.F) {
	id := TopicID{1}
	for _, rec := range []*record{
		{Type: "cluster", ClusterID: "c"},
		{Type: "topic", Create: true, Name: "a", ID: &id, Partitions: 3},
		{Type: "topic", Name: "a", ID: &id, Partitions: 3, Configs: map[string]string{"x": "y"}},
		{Type: "partitions", Name: "a", Partitions: 5},
		{Type: "delete_topic", Name: "a", ID: &id},
		{Type: "image", Image: &imageFile{ClusterID: "c", Topics: []*Topic{{Name: "b", Partitions: 1}}}},
		{Type: "register_broker", Broker: &Broker{ID: 2, Listeners: []Listener{{Host: "h", Port: 1}}}},
		{Type: "fence_broker", NodeID: 2, Epoch: 7},
		{Type: "producer_ids", NextPID: 10},
		{Type: "client_metrics", Name: "m", Configs: map[string]string{"k": "v"}},
	} {
		b, _ := json.Marshal(rec)
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := &Store{lg: discardLogger()}
		s.image.Store(emptyImage())
		fm := &fsm{s: s}
		for i, data := range [][]byte{a, b, a} {
			fm.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		}
		im := s.Image()
		for name, tp := range im.Topics {
			if tp.Name != name || im.ByID[tp.ID] != tp || tp.Partitions < 1 {
				t.Fatalf("topic %q: %+v", name, tp)
			}
		}
		if len(im.ByID) != len(im.Topics) {
			t.Fatalf("%d topics by id, %d by name", len(im.ByID), len(im.Topics))
		}
		for id, br := range im.Brokers {
			if br == nil || br.ID != id {
				t.Fatalf("broker %d: %+v", id, br)
			}
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestApplyRefusesMalformed: records no broker writes are refused whole,
// for the cases the fuzzer needs long to build.
func TestApplyRefusesMalformed(t *testing.T) {
	id := TopicID{9}
	for _, rec := range []*record{
		{Type: "topic", Create: true, Name: "", ID: &id, Partitions: 1},
		{Type: "topic", Create: true, Name: "x", Partitions: 1},
		{Type: "topic", Create: true, Name: "x", ID: &id, Partitions: 0},
		{Type: "topic", Create: true, Name: "same-id", ID: &id, Partitions: 1},
		{Type: "image", Image: &imageFile{ClusterID: "c", Topics: []*Topic{{Name: "a", Partitions: 1}, {Name: "b", Partitions: 1}}}},
		{Type: "image", Image: &imageFile{ClusterID: "c", Topics: []*Topic{{Name: "a", Partitions: 1, ID: id}, {Name: "a", Partitions: 1}}}},
		{Type: "image"},
		{Type: "register_broker"},
		{Type: "partitions", Name: "taken", Partitions: -1},
	} {
		s := &Store{lg: discardLogger()}
		im := emptyImage()
		im.Topics["taken"] = &Topic{Name: "taken", ID: id, Partitions: 1}
		im.ByID[id] = im.Topics["taken"]
		s.image.Store(im)
		b, _ := json.Marshal(rec)
		res := (&fsm{s: s}).Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b})
		if err, _ := res.(error); err == nil || s.Image() != im {
			t.Errorf("%s applied (result %v)", b, res)
		}
	}
}
