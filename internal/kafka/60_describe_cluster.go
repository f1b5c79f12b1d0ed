package kafka

// Behavior:
//
//   - One broker (this one, at the advertised address), which is also the
//     controller. EndpointType 2 (controller endpoints, KIP-919) is answered
//     with the same single node. No broker is ever fenced.

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
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.opts.NodeID, b.opts.AdvertisedHost, b.opts.AdvertisedPort
	resp.Brokers = append(resp.Brokers, br)
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allOperations
	}
	return resp, nil
}
