package kafka

// Behavior:
//
//   - A group key (type 0) or transactional id (type 1) is coordinated by the
//     leader of its partition of __consumer_offsets / __transaction_state
//     (statelog.PartitionFor): the answer names that broker and its
//     endpoint, COORDINATOR_NOT_AVAILABLE while it is fenced or gone, or
//     while this broker's own coordinator is not installed yet. Other types
//     INVALID_REQUEST.
//
// Version notes:
//   - v0-v6; v4+ batch keys (CoordinatorKeys) with a result per key.

import (
	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFindCoordinator(b *Broker, r *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, k := range keys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key, sc.NodeID, sc.Host, sc.Port = k, b.opts.NodeID, b.opts.AdvertisedHost, b.opts.AdvertisedPort
		var code int16
		switch {
		case r.CoordinatorType == 1:
			if b.txns.Load() == nil {
				code = kerr.CoordinatorNotAvailable.Code
			} else {
				code = b.coordinatorAt(TxnStateTopic, k, &sc)
			}
		case r.CoordinatorType != 0:
			code = kerr.InvalidRequest.Code
		case b.groups.Load() == nil:
			code = kerr.CoordinatorNotAvailable.Code
		default:
			code = b.coordinatorAt(OffsetsTopic, k, &sc)
		}
		if code != 0 {
			sc.ErrorCode, sc.NodeID, sc.Host, sc.Port = code, -1, "", -1
			sc.ErrorMessage = kmsg.StringPtr(kerr.ErrorForCode(code).Error())
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	if r.Version < 4 {
		sc := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = sc.ErrorCode, sc.ErrorMessage, sc.NodeID, sc.Host, sc.Port
		resp.Coordinators = nil
	}
	return resp, nil
}

// coordinatorAt points sc at the leader of key's partition of the internal
// topic, or returns COORDINATOR_NOT_AVAILABLE while it has none. sc names
// this broker already (also when the topic does not exist yet: this broker
// creates it when its coordinator starts).
func (b *Broker) coordinatorAt(topic, key string, sc *kmsg.FindCoordinatorResponseCoordinator) int16 {
	im := b.meta.Image()
	t := im.Topics[topic]
	if t == nil {
		return 0
	}
	id, _ := b.leaderOf(im, t, int32(statelog.PartitionFor(key, int(t.Partitions))))
	if id == b.opts.NodeID {
		return 0
	}
	for _, e := range b.brokerList(im, false) {
		if e.id == id {
			sc.NodeID, sc.Host, sc.Port = e.id, e.host, e.port
			return 0
		}
	}
	return kerr.CoordinatorNotAvailable.Code
}
