package kafka

// Behavior:
//
//   - The brokers registered with the metadata quorum, each at its first
//     listener (a broker alone: itself, at the advertised address); fenced
//     ones (no heartbeat for broker.session.timeout.ms) only with
//     IncludeFencedBrokers (v2, KIP-1073), marked IsFenced. This broker is
//     named the controller. EndpointType 2 (controller endpoints, KIP-919)
//     is answered with the same list.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(b *Broker, r *kmsg.DescribeClusterRequest) (*kmsg.DescribeClusterResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = r.EndpointType
	if resp.EndpointType == 0 {
		resp.EndpointType = 1
	}
	resp.ClusterID = b.meta.Image().ClusterID
	resp.ControllerID = b.opts.NodeID
	for _, e := range b.brokerList(b.meta.Image(), r.IncludeFencedBrokers) {
		br := kmsg.NewDescribeClusterResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack, br.IsFenced = e.id, e.host, e.port, e.rack, e.fenced
		resp.Brokers = append(resp.Brokers, br)
	}
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allOperations
	}
	return resp, nil
}
