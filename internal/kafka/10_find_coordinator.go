package kafka

// Behavior:
//
//   - This broker coordinates every consumer group and every transactional
//     id: group keys (type 0) and transaction keys (type 1) answer this node
//     (COORDINATOR_NOT_AVAILABLE until that coordinator is installed); other
//     types INVALID_REQUEST.
//
// Version notes:
//   - v0-v6; v4+ batch keys (CoordinatorKeys) with a result per key.

import (
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
			}
		case r.CoordinatorType != 0:
			code = kerr.InvalidRequest.Code
		case b.groups.Load() == nil:
			code = kerr.CoordinatorNotAvailable.Code
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
