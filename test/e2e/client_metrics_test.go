package e2e

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClientMetricsPushedToPrometheus: a CLIENT_METRICS subscription created
// with IncrementalAlterConfigs makes a franz-go producer whose client id it
// matches push its KIP-714 metrics, which /metrics then shows with the
// client id; a client it does not match pushes nothing; the subscription
// survives a restart.
func TestClientMetricsPushedToPrometheus(t *testing.T) {
	dir := t.TempDir()
	b := StartBrokerIn(t, dir)
	ctx := Ctx(t, 90*time.Second)
	admin := b.Client(t, kgo.DisableClientMetrics())
	adm := kadm.NewClient(admin)

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "e2e"
	for _, kv := range [][2]string{
		{"metrics", "org.apache.kafka.producer.,chronik.e2e."},
		{"interval.ms", "1000"},
		{"match", "client_id=telemetry-e2e.*"},
	} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = kv[0], kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(kv[1])
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("creating the subscription: %v", err)
	}
	listed, err := adm.ListConfigResources(ctx, kadm.ConfigResourceClientMetrics)
	if err != nil || listed.Err != nil || !slices.Equal(listed.Names(), []string{"e2e"}) {
		t.Fatalf("ListConfigResources: %+v %v", listed, err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "telemetry"); err != nil {
		t.Fatal(err)
	}

	user := func() iter.Seq[kgo.Metric] {
		return func(yield func(kgo.Metric) bool) {
			yield(kgo.Metric{Name: "chronik.e2e.gauge", Type: kgo.MetricTypeGauge, ValueFloat: 42})
		}
	}
	matched := b.Client(t, kgo.ClientID("telemetry-e2e"), kgo.DefaultProduceTopic("telemetry"), kgo.UserMetricsFn(user))
	other := b.Client(t, kgo.ClientID("unmatched"), kgo.DefaultProduceTopic("telemetry"), kgo.UserMetricsFn(user))
	for _, cl := range []*kgo.Client{matched, other} {
		if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	want := []string{
		`chronik_client_metric{attributes="",client_id="telemetry-e2e",client_instance_id="`,
		`name="chronik.e2e.gauge"} 42`,
		`name="org.apache.kafka.producer.`,
	}
	CheckFor(t, 30*time.Second, func() error {
		_, body := b.Get(t, "/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("/metrics lacks %s", w)
			}
		}
		if strings.Contains(body, `client_id="unmatched"`) {
			t.Fatalf("an unmatched client's metrics were exported")
		}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "chronik_client_metric") {
				t.Log(line)
			}
		}
		return nil
	})

	b.Stop()
	b = StartBrokerIn(t, dir)
	adm = kadm.NewClient(b.Client(t, kgo.DisableClientMetrics()))
	listed, err = adm.ListConfigResources(ctx)
	if err != nil || !slices.Contains(listed.Names(), "e2e") {
		t.Fatalf("after restart: %+v %v", listed, err)
	}
}
