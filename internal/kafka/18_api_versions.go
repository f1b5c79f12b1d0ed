package kafka

// Behavior:
//
//   - Lists exactly the versions table of api.go, sorted by key, with one
//     exception: Produce is listed from v0 although v0-v2 are refused like
//     any version outside the table (the connection is closed). librdkafka
//     before the fix of its issue 4956 (e.g. Debian's 2.0.2) only compresses
//     gzip and snappy batches when the broker lists Produce v0 and otherwise
//     silently sends them uncompressed; clients use the highest common
//     version, so none picks v0-v2 from this. Kafka 4.0 does the same
//     (KAFKA-18659).
//   - A request at a version above ours is answered in the v0 format with
//     UNSUPPORTED_VERSION and the full list (wire calls UnsupportedVersion),
//     so clients can retry with a version we support (KIP-511 behaviour).
//   - v3+ features (KIP-584): transaction.version is supported at levels
//     0-2 and finalized at the broker's --transaction-version (2 by
//     default; clients then use KIP-890 part 2 transactions).
//   - GetTelemetrySubscriptions and PushTelemetry are listed only while
//     the broker serves them (--client-metrics; Kafka lists them only when
//     a client telemetry receiver is configured).
//   - v3+ ClientSoftwareName/Version are kept on the connection for
//     KIP-714 client metrics subscriptions (match on
//     client_software_name/version).
//   - v5 ClusterID/NodeID (KIP-1242): a client naming another cluster or node
//     gets REBOOTSTRAP_REQUIRED; setting only one of
//     them is INVALID_REQUEST.

import (
	"context"
	"sort"

	"github.com/chronik-stream/chronik/internal/wire"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) apiVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	keys := make([]int16, 0, len(versions))
	for k := range versions {
		if b.serves(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, advertisedMin(k), versions[k].max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, 2
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	tv := b.opts.TransactionVersion
	resp.FinalizedFeaturesEpoch = int64(tv) // changes only with the setting, at a restart
	if tv > 0 {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", tv, tv
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	}
	return resp
}

// advertisedMin is the minimum version ApiVersions lists for key (see the
// Produce note above); dispatch still enforces versions[key].min.
func advertisedMin(key int16) int16 {
	if key == kmsg.Produce.Int16() {
		return 0
	}
	return versions[key].min
}

// apiVersions records the client software a v3+ request names on the
// connection (KIP-714 subscriptions match on it), then answers.
func apiVersions(b *Broker, ctx context.Context, req *wire.Request) (wire.Reply, error) {
	if r, ok := req.Body.(*kmsg.ApiVersionsRequest); ok && r.Version >= 3 {
		req.Conn.SetClientSoftware(r.ClientSoftwareName, r.ClientSoftwareVersion)
	}
	return immediate(handleApiVersions)(b, ctx, req)
}

func handleApiVersions(b *Broker, r *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
	resp := b.apiVersionsResponse()
	if r.Version >= 5 {
		if (r.ClusterID == nil) != (r.NodeID < 0) {
			resp.ErrorCode = kerr.InvalidRequest.Code
		} else if (r.ClusterID != nil && *r.ClusterID != b.meta.Image().ClusterID) || (r.NodeID >= 0 && r.NodeID != b.opts.NodeID) {
			resp.ErrorCode = kerr.RebootstrapRequired.Code
		}
	}
	return resp, nil
}
