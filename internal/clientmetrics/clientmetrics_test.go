package clientmetrics

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want error // nil: valid
	}{
		{"s", nil, nil},
		{"s", map[string]string{"metrics": "*", "interval.ms": "100", "match": "client_id=a.*, client_software_name=kgo"}, nil},
		{"s", map[string]string{"metrics": "", "interval.ms": " 3600000 "}, nil},
		{"", map[string]string{"metrics": "*"}, ErrInvalidRequest},
		{"s", map[string]string{"metric": "*"}, ErrInvalidRequest},
		{"s", map[string]string{"interval.ms": "99"}, ErrInvalidRequest},
		{"s", map[string]string{"interval.ms": "3600001"}, ErrInvalidRequest},
		{"s", map[string]string{"interval.ms": "1s"}, ErrInvalidConfig},
		{"s", map[string]string{"interval.ms": "99999999999"}, ErrInvalidConfig},
		{"s", map[string]string{"match": "client_id"}, ErrInvalidConfig},
		{"s", map[string]string{"match": "client_id="}, ErrInvalidConfig},
		{"s", map[string]string{"match": "client_id=a=b"}, ErrInvalidConfig},
		{"s", map[string]string{"match": "host=a"}, ErrInvalidConfig},
		{"s", map[string]string{"match": "client_id=("}, ErrInvalidConfig},
	} {
		_, err := Parse(tc.name, tc.cfg)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q, %v) = %v, want %v", tc.name, tc.cfg, err, tc.want)
		}
	}
	s, err := Parse("s", map[string]string{"metrics": "a., b.", "interval.ms": "250"})
	if err != nil || !slices.Equal(s.Metrics, []string{"a.", "b."}) || s.IntervalMs != 250 {
		t.Fatalf("Parse = %+v, %v", s, err)
	}
}

func TestMatches(t *testing.T) {
	attrs := map[string]string{MatchClientID: "orders-1", MatchSoftwareName: "kgo", MatchSourcePort: "5000"}
	for _, tc := range []struct {
		match string
		want  bool
	}{
		{"", true},
		{"client_id=orders-.*", true},
		{"client_id=orders", false}, // whole value, as Java's matches()
		{"client_id=orders-.*,client_software_name=kgo", true},
		{"client_id=orders-.*,client_software_name=java", false},
		{"client_software_version=.*", false}, // attribute unknown
		{"client_source_port=50+", true},
	} {
		s, err := Parse("s", map[string]string{"match": tc.match})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Matches(attrs); got != tc.want {
			t.Errorf("match %q: %v, want %v", tc.match, got, tc.want)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestManager(opts Options) (*Manager, *clock) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	opts.Now = c.now
	return New(opts), c
}

var client = Client{ClientID: "orders-1", SoftwareName: "kgo", SoftwareVersion: "1.22.3", SourceAddress: "127.0.0.1", SourcePort: "40000"}

func TestGetSubscriptions(t *testing.T) {
	m, clk := newTestManager(Options{})
	s, code := m.Get([16]byte{}, client)
	if code != 0 || s.InstanceID == ([16]byte{}) || s.Metrics != nil || s.IntervalMs != DefaultIntervalMs || s.MaxBytes != DefaultMaxBytes {
		t.Fatalf("no subscription: %+v %d", s, code)
	}
	id := s.InstanceID
	if _, code := m.Get(id, client); code != kerr.ThrottlingQuotaExceeded.Code {
		t.Fatalf("early Get: %d", code)
	}
	m.Update("a", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "1000"})
	m.Update("b", map[string]string{"metrics": "org.apache.kafka.consumer.", "interval.ms": "2000", "match": "client_software_name=kgo"})
	m.Update("c", map[string]string{"metrics": "x.", "interval.ms": "100", "match": "client_id=other"})
	s2, code := m.Get(id, client) // subscriptions changed: no throttle
	if code != 0 || s2.InstanceID != id || s2.IntervalMs != 1000 ||
		!slices.Equal(s2.Metrics, []string{"org.apache.kafka.consumer.", "org.apache.kafka.producer."}) || s2.SubscriptionID == s.SubscriptionID {
		t.Fatalf("subscribed: %+v %d", s2, code)
	}
	clk.add(time.Second)
	s3, code := m.Get(id, client)
	if code != 0 || s3.SubscriptionID != s2.SubscriptionID {
		t.Fatalf("same subscriptions, new id: %+v %d", s3, code)
	}
	m.Update("all", map[string]string{"metrics": "*"})
	if s4, _ := m.Get(id, client); !slices.Equal(s4.Metrics, []string{""}) {
		t.Fatalf("all metrics: %q", s4.Metrics)
	}
	if got := m.Names(); !slices.Equal(got, []string{"a", "all", "b", "c"}) {
		t.Fatalf("Names = %v", got)
	}
	m.Update("all", nil)
	if got := m.Names(); len(got) != 3 {
		t.Fatalf("after delete: %v", got)
	}
}

func otlpPayload(t testing.TB, value float64) []byte {
	attr := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	sum := 12.5
	md := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
		{Name: "org.apache.kafka.producer.record.queue.time.avg", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
			{Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: value}},
		}}}},
		{Name: "org.apache.kafka.producer.node.request.total", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
			DataPoints: []*metricspb.NumberDataPoint{
				{Attributes: []*commonpb.KeyValue{attr("node_id", "1")}, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 3}},
				{Attributes: []*commonpb.KeyValue{attr("node_id", "2")}, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 4}},
			}}}},
		{Name: "h", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{DataPoints: []*metricspb.HistogramDataPoint{{Count: 5, Sum: &sum}}}}},
	}}}}}}
	b, err := proto.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gather(t *testing.T, m *Manager) string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			buf.WriteString(mf.GetName())
			for _, l := range metric.GetLabel() {
				buf.WriteString(" " + l.GetName() + "=" + l.GetValue())
			}
			if g := metric.GetGauge(); g != nil {
				buf.WriteString(" " + strconv.FormatFloat(g.GetValue(), 'g', -1, 64))
			}
			buf.WriteString("\n")
		}
	}
	return buf.String()
}

func TestPushErrorsAndExport(t *testing.T) {
	m, clk := newTestManager(Options{MaxBytes: 4096})
	m.Update("a", map[string]string{"metrics": "*", "interval.ms": "1000"})
	s, _ := m.Get([16]byte{}, client)
	push := Push{InstanceID: s.InstanceID, SubscriptionID: s.SubscriptionID, Metrics: otlpPayload(t, 7)}

	if _, code := m.Push(Push{SubscriptionID: s.SubscriptionID}, client); code != kerr.InvalidRequest.Code {
		t.Fatalf("zero instance id: %d", code)
	}
	if _, code := m.Push(push, client); code != 0 { // right after the Get: on time
		t.Fatalf("first push: %d", code)
	}
	if _, code := m.Push(push, client); code != kerr.ThrottlingQuotaExceeded.Code {
		t.Fatalf("early push: %d", code)
	}
	clk.add(time.Second)
	bad := push
	bad.SubscriptionID++
	if _, code := m.Push(bad, client); code != kerr.UnknownSubscriptionID.Code {
		t.Fatalf("stale subscription: %d", code)
	}
	if _, code := m.Get(s.InstanceID, client); code != 0 { // allowed at once after UNKNOWN_SUBSCRIPTION_ID
		t.Fatalf("Get after unknown subscription: %d", code)
	}
	for _, tc := range []struct {
		mod  func(*Push)
		code int16
	}{
		{func(p *Push) { p.Compression = 9 }, kerr.UnsupportedCompressionType.Code},
		{func(p *Push) { p.Metrics = make([]byte, 4097) }, kerr.TelemetryTooLarge.Code},
		{func(p *Push) { p.Metrics = []byte{0xff, 0xff, 0xff} }, kerr.InvalidRecord.Code},
		{func(p *Push) { p.Compression = 4; p.Metrics = []byte("not zstd") }, kerr.InvalidRecord.Code},
	} {
		clk.add(time.Second)
		p := push
		tc.mod(&p)
		if _, code := m.Push(p, client); code != tc.code {
			t.Fatalf("push: %d, want %d", code, tc.code)
		}
	}
	clk.add(time.Second)
	enc, _ := zstd.NewWriter(nil)
	zp := push
	zp.Compression, zp.Metrics = 4, enc.EncodeAll(otlpPayload(t, 9), nil)
	res, code := m.Push(zp, client)
	if code != 0 || res.Points != 5 {
		t.Fatalf("zstd push: %+v %d", res, code)
	}
	out := gather(t, m)
	inst := instanceString(s.InstanceID)
	for _, want := range []string{
		"chronik_client_metric attributes= client_id=orders-1 client_instance_id=" + inst + " name=org.apache.kafka.producer.record.queue.time.avg 9",
		"chronik_client_metric attributes=node_id=1 client_id=orders-1 client_instance_id=" + inst + " name=org.apache.kafka.producer.node.request.total 6", // deltas 3+3
		"name=h.count 5", "name=h.sum 12.5", // cumulative: replaced
		"chronik_client_metrics_instances 1",
		"chronik_client_metrics_series 5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}

	// Unsubscribing removes the series at the client's next request.
	m.Update("a", map[string]string{"metrics": "", "interval.ms": "1000"})
	if _, code := m.Push(push, client); code != kerr.UnknownSubscriptionID.Code {
		t.Fatalf("push after unsubscribing: %d", code)
	}
	if out := gather(t, m); strings.Contains(out, "chronik_client_metric ") {
		t.Fatalf("series left after unsubscribing:\n%s", out)
	}
	m.Update("a", map[string]string{"metrics": "*", "interval.ms": "1000"})
	s, _ = m.Get(s.InstanceID, client)
	push.SubscriptionID = s.SubscriptionID

	// Terminating: accepted even early, then nothing more.
	term := push
	term.Terminating = true
	if _, code := m.Push(term, client); code != 0 {
		t.Fatalf("terminating push: %d", code)
	}
	clk.add(time.Second)
	if _, code := m.Push(push, client); code != kerr.InvalidRequest.Code {
		t.Fatalf("push after terminating: %d", code)
	}

	// Expiry: max(60 s, 3 intervals) without a request forgets the
	// instance and its series.
	clk.add(61 * time.Second)
	out = gather(t, m)
	if strings.Contains(out, "chronik_client_metric ") || !strings.Contains(out, "chronik_client_metrics_instances 0") {
		t.Fatalf("series left after expiry:\n%s", out)
	}
}

func TestSeriesCap(t *testing.T) {
	m, clk := newTestManager(Options{MaxSeries: 3, MaxSeriesPerInstance: 2})
	m.Update("a", map[string]string{"metrics": "*", "interval.ms": "100"})
	var ids [][16]byte
	for i := 0; i < 2; i++ {
		s, _ := m.Get([16]byte{}, client)
		ids = append(ids, s.InstanceID)
		res, code := m.Push(Push{InstanceID: s.InstanceID, SubscriptionID: s.SubscriptionID, Metrics: otlpPayload(t, 1)}, client)
		if code != 0 {
			t.Fatal(code)
		}
		if want := []int{2, 1}[i]; res.Points != want {
			t.Fatalf("instance %d kept %d points, want %d", i, res.Points, want)
		}
		clk.add(time.Millisecond)
	}
	out := gather(t, m)
	if !strings.Contains(out, "chronik_client_metrics_series 3") || !strings.Contains(out, "chronik_client_metrics_series_dropped_total") {
		t.Fatalf("cap:\n%s", out)
	}
}

func TestInstanceCacheBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the cache")
	}
	m, _ := newTestManager(Options{})
	first, _ := m.Get([16]byte{}, client)
	for i := 0; i < maxInstances; i++ {
		m.Get([16]byte{}, client)
	}
	if n := m.Instances(); n != maxInstances {
		t.Fatalf("instances = %d", n)
	}
	m.mu.Lock()
	_, ok := m.instances[first.InstanceID]
	m.mu.Unlock()
	if ok {
		t.Fatal("least recently seen instance not evicted")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := decode(bytes.Repeat([]byte{0x0a, 0xff}, 10)); err == nil {
		t.Fatal("garbage decoded")
	}
	if p, err := decode(nil); err != nil || len(p) != 0 {
		t.Fatalf("empty payload: %v %v", p, err)
	}
}

// FuzzTelemetryPayload feeds arbitrary push payloads, with every codec,
// through decompression, OTLP decoding and the series store: no panics,
// bounded output, and the collector still gathers.
func FuzzTelemetryPayload(f *testing.F) {
	f.Add(int8(0), otlpPayload(f, 1))
	enc, _ := zstd.NewWriter(nil)
	f.Add(int8(4), enc.EncodeAll(otlpPayload(f, 2), nil))
	f.Add(int8(2), []byte{0xff, 0xff, 0xff, 0x7f})
	m, clk := newTestManager(Options{MaxBytes: 1 << 16})
	m.Update("a", map[string]string{"metrics": "*", "interval.ms": "100"})
	s, _ := m.Get([16]byte{}, client)
	var n int
	f.Fuzz(func(t *testing.T, codec int8, payload []byte) {
		clk.add(time.Second)
		res, code := m.Push(Push{InstanceID: s.InstanceID, SubscriptionID: s.SubscriptionID, Compression: codec, Metrics: payload}, client)
		if code == 0 && res.Points > DefaultMaxSeriesPerInstance {
			t.Fatalf("%d points kept", res.Points)
		}
		if n++; n%64 == 0 {
			gather(t, m)
		}
	})
}
