package kafka

// Behavior (KIP-714; subscriptions and instances in internal/clientmetrics):
//
//   - A zero client instance id is assigned a new random one; any other id
//     is used as sent (a client the broker forgot, after a restart or an
//     expiry, keeps its id). The instance's attributes (client id, software
//     name and version from the connection's ApiVersions, source address
//     and port) are taken when the broker first sees it.
//   - The answer carries the union of the metric prefixes of every
//     matching CLIENT_METRICS subscription ([""] for all metrics, where
//     Kafka sends "*": the message spec's "all" is one empty string, and
//     franz-go reads "*" as a literal prefix; empty for none), the lowest
//     interval among them (300000 ms when none match), a subscription id
//     that changes when that set changes, the accepted compression types
//     (zstd, lz4, gzip, snappy), telemetry.max.bytes and
//     DeltaTemporality=false: cumulative sums, which Prometheus expects
//     (Kafka asks for deltas; the broker accumulates deltas anyway).
//   - Asking again before the push interval passed since the instance's
//     last Get or Push: THROTTLING_QUOTA_EXCEEDED, unless the subscriptions
//     changed since or the last push failed with UNKNOWN_SUBSCRIPTION_ID or
//     UNSUPPORTED_COMPRESSION_TYPE (Kafka's intent; its condition is always
//     true, throttling those clients too).
//   - Served and advertised only with --client-metrics (on by default);
//     off, the key is unknown and closes the connection.
//
// Version notes:
//   - v0 only (flexible).

import (
	"net"

	"github.com/chronik-stream/chronik/internal/clientmetrics"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleGetTelemetrySubscriptions(b *Broker, req *wire.Request, r *kmsg.GetTelemetrySubscriptionsRequest) (*kmsg.GetTelemetrySubscriptionsResponse, waitFunc[*kmsg.GetTelemetrySubscriptionsResponse], error) {
	resp := r.ResponseKind().(*kmsg.GetTelemetrySubscriptionsResponse)
	s, code := b.clientMetrics.Get(r.ClientInstanceID, telemetryClient(req))
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil, nil
	}
	resp.ClientInstanceID = s.InstanceID
	resp.SubscriptionID = s.SubscriptionID
	resp.AcceptedCompressionTypes = clientmetrics.AcceptedCompression
	resp.PushIntervalMillis = s.IntervalMs
	resp.TelemetryMaxBytes = s.MaxBytes
	resp.DeltaTemporality = false
	resp.RequestedMetrics = s.Metrics
	if resp.RequestedMetrics == nil {
		resp.RequestedMetrics = []string{}
	}
	return resp, nil, nil
}

// telemetryClient describes the requesting client for subscription
// matching.
func telemetryClient(req *wire.Request) clientmetrics.Client {
	c := clientmetrics.Client{ClientID: req.ClientID}
	if req.Conn != nil {
		c.SoftwareName, c.SoftwareVersion = req.Conn.ClientSoftware()
		if host, port, err := net.SplitHostPort(req.Conn.Remote); err == nil {
			c.SourceAddress, c.SourcePort = host, port
		}
	}
	return c
}
