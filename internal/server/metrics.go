package server

import (
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/kafka"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the broker's Prometheus series. The chronik_produce_* and
// chronik_wal_* names are the v2.1 release's and must not change.
type metrics struct {
	connections prometheus.Gauge
	rejected    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	fsync       prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry, cfg config.Config) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chronik_connections", Help: "Open Kafka client connections."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_connections_rejected_total", Help: "Kafka connections accepted and closed at once, by the limit they exceeded.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronik_requests_total", Help: "Kafka requests served, by API."}, []string{"api"}),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronik_request_errors_total", Help: "Kafka requests that closed their connection, by API."}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chronik_request_duration_seconds", Help: "Time from a request's arrival to its response being written, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"api"}),
		bytesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "chronik_network_received_bytes_total", Help: "Request bytes received."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "chronik_network_sent_bytes_total", Help: "Response bytes sent."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_fsync_round_duration_seconds", Help: "Duration of one group-commit fsync round.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	for _, reason := range []string{"max_connections", "max_connections_per_ip"} {
		m.rejected.WithLabelValues(reason) // exported at 0 before the first refusal
	}
	reg.MustRegister(m.connections, m.rejected, m.requests, m.errors, m.latency, m.bytesIn, m.bytesOut, m.fsync,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chronik_produce_profile_active", Help: "Active produce profile: 0 low-latency, 1 balanced, 2 high-throughput, 3 extreme.",
	}, func() float64 { return float64(cfg.ProduceProfile) }))
	return m
}

func (m *metrics) observeRound(d time.Duration, batches int) { m.fsync.Observe(d.Seconds()) }

func (m *metrics) wireHooks() wire.Hooks {
	return wire.Hooks{
		RequestDone: func(key int16, start time.Time, failed bool) {
			if key < 0 || key >= 128 {
				return
			}
			name := kmsg.NameForKey(key)
			m.requests.WithLabelValues(name).Inc()
			m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
			if failed {
				m.errors.WithLabelValues(name).Inc()
			}
		},
		BytesIn:  func(n int) { m.bytesIn.Add(float64(n)) },
		BytesOut: func(n int) { m.bytesOut.Add(float64(n)) },
	}
}

// registerBroker adds series read from the broker and committer at scrape
// time.
func (m *metrics) registerBroker(reg *prometheus.Registry, b *kafka.Broker, c *commit.Committer, s *Server) {
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter("chronik_produce_flush_total", "Group-commit fsync rounds completed.", func() float64 { return float64(c.Stats().Rounds) })
	counter("chronik_wal_batch_count_total", "Produce batches made durable by fsync rounds.", func() float64 { return float64(c.Stats().Batches) })
	avg := func() float64 {
		st := c.Stats()
		if st.Rounds == 0 {
			return 0
		}
		return float64(st.Batches) / float64(st.Rounds)
	}
	gauge("chronik_produce_batches_per_flush_avg", "Average produce batches per fsync round since start.", avg)
	gauge("chronik_wal_batch_size_avg", "Average produce batches per fsync since start.", avg)
	counter("chronik_wal_rounds_total", "Fsync rounds made durable through the group-commit write-ahead log (one fdatasync for several partitions).", func() float64 { return float64(c.Stats().WALRounds) })
	counter("chronik_fsync_failures_total", "Log fsyncs that failed (the log went offline).", func() float64 { return float64(c.Stats().SyncFailures) })
	gauge("chronik_produce_buffered_bytes", "Appended bytes whose fsync round has not completed (bounded by the profile's buffer).", func() float64 { return float64(c.Buffered()) })
	counter("chronik_messages_in_total", "Records appended by Produce (duplicates excluded).", func() float64 { r, _, _, _ := b.DataStats(); return float64(r) })
	counter("chronik_bytes_in_total", "Record-batch bytes appended by Produce.", func() float64 { _, n, _, _ := b.DataStats(); return float64(n) })
	counter("chronik_messages_out_total", "Records served by Fetch.", func() float64 { _, _, r, _ := b.DataStats(); return float64(r) })
	counter("chronik_bytes_out_total", "Record-batch bytes served by Fetch.", func() float64 { _, _, _, n := b.DataStats(); return float64(n) })
	gauge("chronik_partitions", "Partitions this broker leads (all of them on a broker alone).", func() float64 { return float64(b.Partitions()) })
	gauge("chronik_replicated_partitions_led", "Partitions with more than one replica this broker leads (and has seen a produce or a follower's fetch for since it started).", func() float64 { n, _ := b.ReplicationStats(); return float64(n) })
	gauge("chronik_under_replicated_partitions", "Of those, partitions with a follower out of the in-sync set (Kafka's UnderReplicatedPartitions).", func() float64 { _, n := b.ReplicationStats(); return float64(n) })
	gauge("chronik_partitions_open", "Partitions open now, their state in memory (the files of some may be released); the rest open on first use.", func() float64 { return float64(b.OpenFiles().Partitions) })
	gauge("chronik_partition_open_files", "Files held by open partitions (one per segment), bounded by --max-open-files.", func() float64 { return float64(b.OpenFiles().Open) })
	gauge("chronik_partition_max_open_files", "The open-file budget of partitions (--max-open-files).", func() float64 { return float64(b.OpenFiles().Max) })
	counter("chronik_partition_evictions_total", "Idle partitions closed to stay within --max-open-files.", func() float64 { return float64(b.OpenFiles().Evicted) })
	counter("chronik_partition_recovery_checkpoints_total", "Recovery points written for partitions idle after writes (log.flush.offset.checkpoint.interval.ms).", func() float64 { return float64(b.OpenFiles().Checkpoints) })
	counter("chronik_retention_segments_deleted_total", "Log segments deleted by time or size retention.", func() float64 { return float64(b.Retention().SegmentsDeleted) })
	counter("chronik_retention_bytes_deleted_total", "Log segment bytes deleted by time or size retention.", func() float64 { return float64(b.Retention().BytesDeleted) })
	counter("chronik_cleaner_runs_total", "Log cleaner passes that compacted a partition (its dirty ratio was reached).", func() float64 { return float64(b.Cleaner().Runs) })
	counter("chronik_cleaner_bytes_reclaimed_total", "Log bytes freed by compaction.", func() float64 { return float64(b.Cleaner().BytesReclaimed) })
	counter("chronik_cleaner_records_removed_total", "Records removed by compaction (superseded values, expired tombstones, keyless records).", func() float64 { return float64(b.Cleaner().RecordsRemoved) })
	reg.MustRegister(&topicSizeCollector{b: b, desc: prometheus.NewDesc("chronik_log_size_bytes", "On-disk log size per topic.", []string{"topic"}, nil)})
	reg.MustRegister(b.ClientMetrics())
	if s.meta != nil {
		meta := s.meta
		brokers := func(fenced bool) float64 {
			n := 0
			for _, br := range meta.Image().Brokers {
				if br.Fenced == fenced {
					n++
				}
			}
			return float64(n)
		}
		gauge("chronik_cluster_brokers", "Registered brokers with a live session (this one included).", func() float64 { return brokers(false) })
		gauge("chronik_cluster_brokers_fenced", "Registered brokers fenced: no heartbeat within broker.session.timeout.ms, or stopped.", func() float64 { return brokers(true) })
		gauge("chronik_metadata_quorum_leader", "Node id of the metadata quorum's leader (the controller) as this broker knows it; -1 while there is none.", func() float64 { return float64(meta.Quorum().LeaderID) })
		gauge("chronik_metadata_commit_index", "The metadata log's commit index as this broker knows it (its high watermark).", func() float64 { return float64(meta.Quorum().CommitIndex) })
	}
}

type topicSizeCollector struct {
	b    *kafka.Broker
	desc *prometheus.Desc
}

func (t *topicSizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }
func (t *topicSizeCollector) Collect(ch chan<- prometheus.Metric) {
	for topic, n := range t.b.TopicSizes() {
		ch <- prometheus.MustNewConstMetric(t.desc, prometheus.GaugeValue, float64(n), topic)
	}
}

// brokerConfigs are the settings DescribeConfigs shows for the broker.
func brokerConfigs(cfg config.Config) []kafka.BrokerConfig {
	def := config.Default()
	b := func(name, v, dv string) kafka.BrokerConfig {
		return kafka.BrokerConfig{Name: name, Value: v, Default: v == dv}
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return []kafka.BrokerConfig{
		b("auto.create.topics.enable", strconv.FormatBool(cfg.AutoCreateTopics), strconv.FormatBool(def.AutoCreateTopics)),
		b("num.partitions", i(int64(cfg.DefaultPartitions)), i(int64(def.DefaultPartitions))),
		b("message.max.bytes", i(int64(cfg.MessageMaxBytes)), i(int64(def.MessageMaxBytes))),
		b("socket.request.max.bytes", i(int64(cfg.MaxRequestBytes)), i(int64(def.MaxRequestBytes))),
		b("log.segment.bytes", i(cfg.SegmentBytes), i(def.SegmentBytes)),
		b("log.roll.ms", i(cfg.SegmentAge.Milliseconds()), i(def.SegmentAge.Milliseconds())),
		b("log.retention.ms", i(cfg.RetentionAge.Milliseconds()), i(def.RetentionAge.Milliseconds())),
		b("log.retention.bytes", i(cfg.RetentionBytes), i(def.RetentionBytes)),
		b("log.retention.check.interval.ms", i(cfg.RetentionCheck.Milliseconds()), i(def.RetentionCheck.Milliseconds())),
		b("log.dirs", cfg.DataDir, def.DataDir),
		b("node.id", i(int64(cfg.NodeID)), i(int64(def.NodeID))),
		b("broker.id", i(int64(cfg.NodeID)), i(int64(def.NodeID))),
		b("default.replication.factor", "1", "1"),
		b("min.insync.replicas", "1", "1"),
		b("offsets.topic.replication.factor", "1", "1"),
		b("offsets.retention.minutes", i(int64(cfg.OffsetsRetention/time.Minute)), i(int64(def.OffsetsRetention/time.Minute))),
		b("group.initial.rebalance.delay.ms", i(cfg.GroupInitialRebalanceDelay.Milliseconds()), i(def.GroupInitialRebalanceDelay.Milliseconds())),
		b("transactional.id.expiration.ms", i(cfg.TransactionalIDExpiration.Milliseconds()), i(def.TransactionalIDExpiration.Milliseconds())),
		b("producer.id.expiration.ms", i(cfg.ProducerIDExpiration.Milliseconds()), i(def.ProducerIDExpiration.Milliseconds())),
		b("group.consumer.session.timeout.ms", i(cfg.ConsumerGroupSessionTimeout.Milliseconds()), i(def.ConsumerGroupSessionTimeout.Milliseconds())),
		b("group.consumer.heartbeat.interval.ms", i(cfg.ConsumerGroupHeartbeatInterval.Milliseconds()), i(def.ConsumerGroupHeartbeatInterval.Milliseconds())),
		b("telemetry.max.bytes", i(int64(cfg.TelemetryMaxBytes)), i(int64(def.TelemetryMaxBytes))),
		b("chronik.produce.profile", cfg.ProduceProfile.String(), def.ProduceProfile.String()),
	}
}
