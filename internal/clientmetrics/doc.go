// Package clientmetrics implements the broker side of KIP-714 client
// metrics: subscriptions (CLIENT_METRICS config resources), the cache of
// client instances that GetTelemetrySubscriptions and PushTelemetry
// consult, and the export of pushed OTLP metrics to Prometheus.
//
// Subscriptions: each has metric name prefixes (metrics, "*" for all), a
// push interval (interval.ms, 100 ms to 1 h, 5 min by default) and client
// selectors (match: name=regex over client_instance_id, client_id,
// client_software_name, client_software_version, client_source_address,
// client_source_port; every selector must match the whole value). A client
// instance gets the union of the prefixes and the lowest interval of the
// subscriptions it matches, evaluated when it is first seen and again after
// any subscription change. Its subscription id is a hash of that set and
// the instance id, so it changes exactly when the set changes.
//
// Instances: at most 16384 (least recently seen evicted), forgotten after
// max(60 s, 3 push intervals) without a request, as Kafka does. Expiry is
// checked lazily, at most once a second, on requests and scrapes.
//
// Export: every accepted push replaces the instance's series with the
// decoded values (chronik_client_metric, labels name, attributes,
// client_id, client_instance_id). Gauges and cumulative sums are exported
// as sent; delta sums are accumulated; histograms and summaries become
// name.count and name.sum. Series are bounded in total and per instance;
// points beyond the bound are counted and dropped (logged once). An
// instance's series go with the instance, and when a subscription change
// changes its metric prefixes (until its next push).
//
// Locking: one Manager mutex, a leaf (nothing else is locked under it).
package clientmetrics
