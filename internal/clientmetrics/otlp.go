package clientmetrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// point is one exported value decoded from a push.
type point struct {
	name  string // OTLP metric name, with a .count / .sum suffix for histograms and summaries
	attrs string // the data point's attributes, "k=v" sorted and comma-joined
	value float64
	delta bool // a delta sum: added to the series instead of replacing it
}

const (
	maxNameLen  = 256
	maxAttrsLen = 512
	// maxPointsPerPush bounds the work of one push whatever it holds.
	maxPointsPerPush = 10000
)

var errPayload = errors.New("clientmetrics: bad telemetry payload")

// decode parses an OTLP MetricsData payload (already decompressed) into
// points. Gauges and sums give one point per data point; histograms,
// exponential histograms and summaries give name.count and name.sum.
// Points with over-long or non-UTF-8 names or attributes, and NaN values,
// are skipped; a payload that is not MetricsData fails.
func decode(data []byte) ([]point, error) {
	var md metricspb.MetricsData
	if err := proto.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("%w: %v", errPayload, err)
	}
	var out []point
	add := func(name string, kv []*commonpb.KeyValue, v float64, delta bool) {
		if len(out) >= maxPointsPerPush || math.IsNaN(v) || name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
			return
		}
		attrs, ok := attrString(kv)
		if !ok {
			return
		}
		out = append(out, point{name: name, attrs: attrs, value: v, delta: delta})
	}
	for _, rm := range md.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				name := m.GetName()
				switch {
				case m.GetGauge() != nil:
					for _, dp := range m.GetGauge().GetDataPoints() {
						add(name, dp.GetAttributes(), numberValue(dp), false)
					}
				case m.GetSum() != nil:
					delta := m.GetSum().GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
					for _, dp := range m.GetSum().GetDataPoints() {
						add(name, dp.GetAttributes(), numberValue(dp), delta)
					}
				case m.GetHistogram() != nil:
					delta := m.GetHistogram().GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
					for _, dp := range m.GetHistogram().GetDataPoints() {
						add(name+".count", dp.GetAttributes(), float64(dp.GetCount()), delta)
						if dp.Sum != nil {
							add(name+".sum", dp.GetAttributes(), dp.GetSum(), delta)
						}
					}
				case m.GetExponentialHistogram() != nil:
					delta := m.GetExponentialHistogram().GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
					for _, dp := range m.GetExponentialHistogram().GetDataPoints() {
						add(name+".count", dp.GetAttributes(), float64(dp.GetCount()), delta)
						if dp.Sum != nil {
							add(name+".sum", dp.GetAttributes(), dp.GetSum(), delta)
						}
					}
				case m.GetSummary() != nil:
					for _, dp := range m.GetSummary().GetDataPoints() {
						add(name+".count", dp.GetAttributes(), float64(dp.GetCount()), false)
						add(name+".sum", dp.GetAttributes(), dp.GetSum(), false)
					}
				}
			}
		}
	}
	return out, nil
}

func numberValue(dp *metricspb.NumberDataPoint) float64 {
	if _, ok := dp.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
		return float64(dp.GetAsInt())
	}
	return dp.GetAsDouble()
}

// attrString renders attributes as sorted "key=value" pairs joined by
// commas. Scalar values only; arrays, maps and bytes are skipped. ok is
// false when the result is too long or not UTF-8.
func attrString(kv []*commonpb.KeyValue) (string, bool) {
	if len(kv) == 0 {
		return "", true
	}
	pairs := make([]string, 0, len(kv))
	for _, a := range kv {
		var v string
		switch x := a.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			v = x.StringValue
		case *commonpb.AnyValue_IntValue:
			v = strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			v = strconv.FormatBool(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			v = strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
		default:
			continue
		}
		pairs = append(pairs, a.GetKey()+"="+v)
	}
	sort.Strings(pairs)
	s := strings.Join(pairs, ",")
	if len(s) > maxAttrsLen || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}
