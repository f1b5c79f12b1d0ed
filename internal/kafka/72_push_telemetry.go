package kafka

// Behavior (KIP-714; checks and export in internal/clientmetrics):
//
//   - Checks in Kafka's order: a zero or reserved client instance id:
//     INVALID_REQUEST; a push after the instance's terminating push:
//     INVALID_REQUEST; a push before the push interval passed since the
//     last one (the first push after a Get is always on time, clients
//     jitter it) and not terminating: THROTTLING_QUOTA_EXCEEDED; a
//     subscription id other than the instance's current one (its
//     subscriptions changed, or the client is confused):
//     UNKNOWN_SUBSCRIPTION_ID; an unknown compression type:
//     UNSUPPORTED_COMPRESSION_TYPE; metrics longer than telemetry.max.bytes
//     (compressed): TELEMETRY_TOO_LARGE. The terminating flag is recorded
//     even when the push fails, as Kafka does.
//   - The payload is decompressed (at most 32 x telemetry.max.bytes) and
//     decoded as OTLP MetricsData; failure: INVALID_RECORD. The decoded
//     values replace the instance's series on /metrics
//     (chronik_client_metric; see internal/clientmetrics/doc.go).
//   - An instance unknown to this broker (pushed without a Get here, or
//     forgotten) is created on the push, as in Kafka: its subscription id
//     is deterministic, so a client keeps pushing across a broker restart
//     while the subscriptions stay the same.
//   - Served and advertised only with --client-metrics (on by default).
//
// Version notes:
//   - v0 only (flexible).

import (
	"github.com/chronik-stream/chronik/internal/clientmetrics"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handlePushTelemetry(b *Broker, req *wire.Request, r *kmsg.PushTelemetryRequest) (*kmsg.PushTelemetryResponse, waitFunc[*kmsg.PushTelemetryResponse], error) {
	resp := r.ResponseKind().(*kmsg.PushTelemetryResponse)
	_, resp.ErrorCode = b.clientMetrics.Push(clientmetrics.Push{
		InstanceID: r.ClientInstanceID, SubscriptionID: r.SubscriptionID, Terminating: r.Terminating,
		Compression: r.CompressionType, Metrics: r.Metrics,
	}, telemetryClient(req))
	return resp, nil, nil
}
