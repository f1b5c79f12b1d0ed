package kafka

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// incrCM sends IncrementalAlterConfigs ops (op, key, value triples; value
// "-" for null) for the client metrics subscription name.
func incrCM(f *brokerFixture, name string, validateOnly bool, ops ...any) kmsg.IncrementalAlterConfigsResponseResource {
	f.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, name
	for i := 0; i+2 < len(ops); i += 3 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name = ops[i].(kmsg.IncrementalAlterConfigOp), ops[i+1].(string)
		if v := ops[i+2].(string); v != "-" {
			c.Value = kmsg.StringPtr(v)
		}
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	return f.do(req, 1).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
}

func describeCM(f *brokerFixture, name string) (map[string]string, int16) {
	f.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, name
	req.Resources = append(req.Resources, rr)
	res := f.do(req, 4).(*kmsg.DescribeConfigsResponse).Resources[0]
	out := map[string]string{}
	for _, c := range res.Configs {
		if c.Source != kmsg.ConfigSourceClientMetricsConfig || c.ReadOnly {
			f.t.Errorf("%s: source %v read-only %v", c.Name, c.Source, c.ReadOnly)
		}
		out[c.Name] = *c.Value
	}
	return out, res.ErrorCode
}

func listCM(f *brokerFixture, v int16, types ...int8) ([]string, int16) {
	f.t.Helper()
	req := kmsg.NewPtrListConfigResourcesRequest()
	req.ResourceTypes = types
	resp := f.do(req, v).(*kmsg.ListConfigResourcesResponse)
	var out []string
	for _, r := range resp.ConfigResources {
		out = append(out, kmsg.ConfigResourceType(r.Type).String()+":"+r.Name)
	}
	return out, resp.ErrorCode
}

func TestClientMetricsConfigs(t *testing.T) {
	f := newFixture(t)
	set, del, app, sub := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete, kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract

	for _, tc := range []struct {
		name string
		ops  []any
		want *kerr.Error
	}{
		{"", []any{set, "metrics", "*"}, kerr.InvalidRequest},
		{"s", []any{set, "metric", "*"}, kerr.InvalidRequest},
		{"s", []any{set, "interval.ms", "50"}, kerr.InvalidRequest},
		{"s", []any{set, "interval.ms", "abc"}, kerr.InvalidConfig},
		{"s", []any{set, "match", "client_id"}, kerr.InvalidConfig},
		{"s", []any{set, "match", "client_id=("}, kerr.InvalidConfig},
		{"s", []any{set, "metrics", "-"}, kerr.InvalidRequest},
		{"s", []any{set, "metrics", "a", set, "metrics", "b"}, kerr.InvalidRequest},
		{"s", []any{app, "interval.ms", "5"}, kerr.InvalidConfig},
		{"s", []any{kmsg.IncrementalAlterConfigOp(9), "metrics", "a"}, kerr.InvalidRequest},
	} {
		res := incrCM(f, tc.name, false, tc.ops...)
		wantCode(t, tc.name+" "+res.ResourceType.String(), res.ErrorCode, tc.want)
	}
	if got, _ := listCM(f, 0); len(got) != 0 {
		t.Fatalf("invalid requests created %v", got)
	}

	wantCode(t, "validate only", incrCM(f, "prod", true, set, "metrics", "org.apache.kafka.producer.").ErrorCode, nil)
	if got, code := describeCM(f, "prod"); len(got) != 0 || code != 0 {
		t.Fatalf("validate_only created %v (%d)", got, code)
	}
	wantCode(t, "create", incrCM(f, "prod", false, set, "metrics", "org.apache.kafka.producer.", set, "interval.ms", "1000").ErrorCode, nil)
	wantCode(t, "append", incrCM(f, "prod", false, app, "metrics", "org.apache.kafka.consumer.", app, "match", "client_id=x.*").ErrorCode, nil)
	wantCode(t, "subtract", incrCM(f, "prod", false, sub, "metrics", "org.apache.kafka.producer.").ErrorCode, nil)
	want := map[string]string{"metrics": "org.apache.kafka.consumer.", "interval.ms": "1000", "match": "client_id=x.*"}
	if got, _ := describeCM(f, "prod"); !maps.Equal(got, want) {
		t.Fatalf("describe = %v, want %v", got, want)
	}
	if _, code := describeCM(f, ""); code != kerr.InvalidRequest.Code {
		t.Fatalf("describe of empty name: %d", code)
	}
	if got, code := describeCM(f, "nope"); len(got) != 0 || code != 0 {
		t.Fatalf("describe unknown: %v %d", got, code)
	}

	// AlterConfigs replaces; an empty set deletes.
	req := alterReq("all", false, "metrics", "*")
	req.Resources[0].ResourceType = kmsg.ConfigResourceTypeClientMetrics
	wantCode(t, "alter", f.do(req, 2).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, nil)
	if got, _ := listCM(f, 0); !slices.Equal(got, []string{"CLIENT_METRICS:all", "CLIENT_METRICS:prod"}) {
		t.Fatalf("list v0 = %v", got)
	}

	// Survives a restart.
	f = f.reopen(false)
	if got, _ := describeCM(f, "prod"); !maps.Equal(got, want) {
		t.Fatalf("after restart: %v", got)
	}
	wantCode(t, "delete", incrCM(f, "prod", false, del, "metrics", "-", del, "interval.ms", "-", del, "match", "-").ErrorCode, nil)
	req = alterReq("all", false)
	req.Resources[0].ResourceType = kmsg.ConfigResourceTypeClientMetrics
	wantCode(t, "alter to nothing", f.do(req, 2).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, nil)
	if got, _ := listCM(f, 0); len(got) != 0 {
		t.Fatalf("after deletes: %v", got)
	}
	if got := f.b.ClientMetrics().Names(); len(got) != 0 {
		t.Fatalf("manager still has %v", got)
	}
}

func TestListConfigResources(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t1", 1, nil)
	incrCM(f, "cm", false, kmsg.IncrementalAlterConfigOpSet, "metrics", "*")
	got, code := listCM(f, 1)
	want := []string{"TOPIC:t1", "BROKER:1", "BROKER_LOGGER:1", "CLIENT_METRICS:cm"}
	if code != 0 || !slices.Equal(got, want) {
		t.Fatalf("all types: %v %d, want %v", got, code, want)
	}
	if got, _ := listCM(f, 1, 16, 2); !slices.Equal(got, []string{"TOPIC:t1", "CLIENT_METRICS:cm"}) {
		t.Fatalf("topic and client metrics: %v", got)
	}
	if got, code := listCM(f, 1, 1); code != kerr.UnsupportedVersion.Code || len(got) != 0 {
		t.Fatalf("unknown type: %v %d", got, code)
	}
}

func TestTelemetryHandlers(t *testing.T) {
	f := newFixture(t)
	incrCM(f, "all", false, kmsg.IncrementalAlterConfigOpSet, "metrics", "*", kmsg.IncrementalAlterConfigOpSet, "interval.ms", "100")

	greq := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
	g := f.do(greq, 0).(*kmsg.GetTelemetrySubscriptionsResponse)
	if g.ErrorCode != 0 || g.ClientInstanceID == ([16]byte{}) || !slices.Equal(g.RequestedMetrics, []string{""}) ||
		g.PushIntervalMillis != 100 || g.TelemetryMaxBytes != 1<<20 || len(g.AcceptedCompressionTypes) != 4 {
		t.Fatalf("get: %+v", g)
	}
	preq := kmsg.NewPtrPushTelemetryRequest()
	preq.ClientInstanceID, preq.SubscriptionID, preq.Metrics = g.ClientInstanceID, g.SubscriptionID, []byte{0xff}
	wantCode(t, "bad payload", f.do(preq, 0).(*kmsg.PushTelemetryResponse).ErrorCode, kerr.InvalidRecord)
	preq.Metrics = nil
	wantCode(t, "too early", f.do(preq, 0).(*kmsg.PushTelemetryResponse).ErrorCode, kerr.ThrottlingQuotaExceeded)
	preq.ClientInstanceID = [16]byte{}
	wantCode(t, "no instance", f.do(preq, 0).(*kmsg.PushTelemetryResponse).ErrorCode, kerr.InvalidRequest)

	// A subscription change makes the old subscription id unknown.
	incrCM(f, "all", false, kmsg.IncrementalAlterConfigOpSet, "interval.ms", "200")
	preq.ClientInstanceID = g.ClientInstanceID
	wantCode(t, "stale subscription", f.do(preq, 0).(*kmsg.PushTelemetryResponse).ErrorCode, kerr.UnknownSubscriptionID)
	greq.ClientInstanceID = g.ClientInstanceID
	g2 := f.do(greq, 0).(*kmsg.GetTelemetrySubscriptionsResponse)
	if g2.ErrorCode != 0 || g2.PushIntervalMillis != 200 || g2.SubscriptionID == g.SubscriptionID {
		t.Fatalf("get after change: %+v", g2)
	}
}

func TestTelemetryCanBeTurnedOff(t *testing.T) {
	f := openFixture(t, t.TempDir(), func(o *Options) { o.NoClientTelemetry = true })
	resp := f.do(kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse)
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.GetTelemetrySubscriptions.Int16() || k.ApiKey == kmsg.PushTelemetry.Int16() {
			t.Fatalf("advertised %s while off", kmsg.NameForKey(k.ApiKey))
		}
	}
	if _, _, ok := f.b.Versions(kmsg.PushTelemetry.Int16()); ok {
		t.Fatal("PushTelemetry served while off")
	}
	req := kmsg.NewPtrPushTelemetryRequest()
	if _, err := f.b.Handle(context.Background(), &wire.Request{Key: req.Key(), Body: req}); err == nil {
		t.Fatal("PushTelemetry handled while off")
	}
	on := newFixture(t).do(kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse)
	if !slices.ContainsFunc(on.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == kmsg.PushTelemetry.Int16() }) {
		t.Fatal("PushTelemetry not advertised by default")
	}
}
