package e2e

// Requests below the Kafka 4.0 baseline that tools still send and that need
// no old message format (README, Supported Kafka APIs).

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClientsListOffsetsV0: ListOffsets v0 as sarama (Burrow 1.2.1) sends it,
// newest with MaxNumOffsets 1 and oldest, is answered with old-style offsets
// on the same connection (it used to be closed).
func TestClientsListOffsetsV0(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	clientsCreateTopic(t, adm, "old", 1, nil)
	groupsProduce(t, b, "old", 0, 10)

	vs := kversion.V4_0_0()
	vs.SetMaxKeyVersion(kmsg.ListOffsets.Int16(), 0)
	cl := b.Client(t, kgo.MaxVersions(vs))
	ask := func(ts int64) []int64 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.MaxNumOffsets = ts, 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kr, err := cl.Broker(1).Request(Ctx(t, 10*time.Second), req)
		if err != nil {
			t.Fatalf("ListOffsets v0 @%d: %v", ts, err)
		}
		resp := kr.(*kmsg.ListOffsetsResponse)
		if resp.Version != 0 {
			t.Fatalf("answered at v%d, want v0", resp.Version)
		}
		sp := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			t.Fatalf("ListOffsets v0 @%d: %v", ts, err)
		}
		return sp.OldStyleOffsets
	}
	for range 2 { // twice: the connection stays open
		if got := fmt.Sprint(ask(-1)); got != "[10]" {
			t.Fatalf("newest: %s, want [10]", got)
		}
		if got := fmt.Sprint(ask(-2)); got != "[0]" {
			t.Fatalf("oldest: %s, want [0]", got)
		}
	}
}
