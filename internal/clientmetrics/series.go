package clientmetrics

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults bounding the exported series.
const (
	DefaultMaxSeries            = 10000
	DefaultMaxSeriesPerInstance = 1000
)

type seriesKey struct{ name, attrs string }

type instanceSeries struct {
	clientID, instanceID string
	values               map[seriesKey]float64
}

// seriesStore holds the last value of every pushed series, per client
// instance, guarded by Manager.mu. Series of an instance go when the
// instance expires or is evicted.
type seriesStore struct {
	max, maxPerInstance int
	total               int
	byInstance          map[[16]byte]*instanceSeries
	capped              bool // a series was refused; logged once until under the cap again
	dropped             int64
	log                 *slog.Logger
}

func (s *seriesStore) init(max, perInstance int, lg *slog.Logger) {
	if max <= 0 {
		max = DefaultMaxSeries
	}
	if perInstance <= 0 {
		perInstance = DefaultMaxSeriesPerInstance
	}
	s.max, s.maxPerInstance, s.log = max, perInstance, lg
	s.byInstance = map[[16]byte]*instanceSeries{}
}

// update stores the points of one push and returns how many were kept.
func (s *seriesStore) update(in *instance, points []point, _ time.Time) int {
	is := s.byInstance[in.id]
	if is == nil {
		is = &instanceSeries{clientID: in.clientID, instanceID: instanceString(in.id), values: map[seriesKey]float64{}}
		s.byInstance[in.id] = is
	}
	kept := 0
	for _, p := range points {
		k := seriesKey{p.name, p.attrs}
		old, ok := is.values[k]
		if !ok {
			if s.total >= s.max || len(is.values) >= s.maxPerInstance {
				s.dropped++
				if !s.capped {
					s.capped = true
					s.log.Warn("client metrics series limit reached; new series are not exported",
						"max_series", s.max, "max_series_per_instance", s.maxPerInstance)
				}
				continue
			}
			s.total++
		}
		if p.delta {
			p.value += old
		}
		is.values[k] = p.value
		kept++
	}
	if len(is.values) == 0 {
		delete(s.byInstance, in.id)
	}
	return kept
}

// drop removes an instance's series.
func (s *seriesStore) drop(id [16]byte) {
	is := s.byInstance[id]
	if is == nil {
		return
	}
	s.total -= len(is.values)
	delete(s.byInstance, id)
	if s.capped && s.total < s.max*9/10 {
		s.capped = false
	}
}

var (
	clientMetricDesc = prometheus.NewDesc("chronik_client_metric",
		"Metrics pushed by clients (KIP-714): the last value of each OTLP gauge, sum or histogram count/sum, by metric name and data point attributes.",
		[]string{"name", "attributes", "client_id", "client_instance_id"}, nil)
	instancesDesc = prometheus.NewDesc("chronik_client_metrics_instances",
		"Client instances known to the KIP-714 client metrics cache.", nil, nil)
	seriesDesc = prometheus.NewDesc("chronik_client_metrics_series",
		"Series exported as chronik_client_metric.", nil, nil)
	droppedDesc = prometheus.NewDesc("chronik_client_metrics_series_dropped_total",
		"Pushed data points not exported because the series limit was reached.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- clientMetricDesc
	ch <- instancesDesc
	ch <- seriesDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector: expired instances are swept
// first, so their series disappear even when no client sends requests.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(m.now())
	ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(m.lru.Len()))
	ch <- prometheus.MustNewConstMetric(seriesDesc, prometheus.GaugeValue, float64(m.series.total))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(m.series.dropped))
	for _, is := range m.series.byInstance {
		for k, v := range is.values {
			metric, err := prometheus.NewConstMetric(clientMetricDesc, prometheus.GaugeValue, v, k.name, k.attrs, is.clientID, is.instanceID)
			if err == nil {
				ch <- metric
			}
		}
	}
}
