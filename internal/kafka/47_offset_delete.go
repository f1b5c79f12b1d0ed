package kafka

// Behavior:
//
//   - Deletes committed offsets of a group (tombstones, fsynced before the
//     answer). Unknown group GROUP_ID_NOT_FOUND; partitions of unknown topics
//     UNKNOWN_TOPIC_OR_PARTITION; topics that members of a live consumer
//     group subscribe to GROUP_SUBSCRIBED_TO_TOPIC, as Kafka.
//
// Version notes:
//   - v0 only.

import (
	"context"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(b *Broker, _ context.Context, req *wire.Request) (wire.Reply, error) {
	r, ok := req.Body.(*kmsg.OffsetDeleteRequest)
	if !ok {
		return wire.Reply{}, errWrongType
	}
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.SetVersion(req.Version)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Reply{Resp: resp}, nil
	}
	var tps []group.TP
	var pending []*int16
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(r.Topics))
	for ti, rt := range r.Topics {
		st := &resp.Topics[ti]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			if b.partition(rt.Topic, rp.Partition) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			tps = append(tps, group.TP{Topic: rt.Topic, Partition: rp.Partition})
			pending = append(pending, &sp.ErrorCode)
		}
	}
	wait := c.DeleteOffsets(r.Group, tps)
	return wire.Reply{Later: func() kmsg.Response {
		ctx, cancel := b.groupWait(req, groupReplyTimeout)
		defer cancel()
		code, codes, ok := wait(ctx)
		if !ok {
			if clientGone(req) {
				return nil
			}
			code = kerr.CoordinatorNotAvailable.Code
		}
		if code != 0 {
			resp.ErrorCode = code
			resp.Topics = nil
			return resp
		}
		for i, p := range pending {
			*p = codes[i]
		}
		return resp
	}}, nil
}
