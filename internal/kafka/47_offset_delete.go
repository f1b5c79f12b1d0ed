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

func handleOffsetDelete(b *Broker, req *wire.Request, r *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, waitFunc[*kmsg.OffsetDeleteResponse], error) {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	c := b.groups.Load()
	if c == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, nil
	}
	if code := b.notCoordinator(r.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
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
	return nil, func(ctx context.Context) *kmsg.OffsetDeleteResponse {
		ctx, cancel := context.WithTimeout(ctx, groupReplyTimeout)
		defer cancel()
		code, codes, ok := wait(ctx)
		if !ok {
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
	}, nil
}
