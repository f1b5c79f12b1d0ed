package kafka

// CLIENT_METRICS config resources (KIP-714 subscriptions): created, changed
// and deleted with IncrementalAlterConfigs or AlterConfigs, shown by
// DescribeConfigs, listed by ListConfigResources. Each is persisted in the
// metadata log (record "client_metrics"; empty configs delete it) and
// handed to the clientmetrics.Manager, which re-evaluates every client
// instance's subscription at its next request.

import (
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/chronik-stream/chronik/internal/clientmetrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClientMetrics is the KIP-714 manager (a Prometheus collector of the
// pushed metrics; the server registers it).
func (b *Broker) ClientMetrics() *clientmetrics.Manager { return b.clientMetrics }

// alterClientMetrics computes a subscription's new configs with change
// (given a copy of the current ones, nil for a new one), validates them
// as Kafka does and, unless validateOnly, persists and applies them. All
// configs removed deletes the subscription.
func (b *Broker) alterClientMetrics(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) (int16, string) {
	if name == "" {
		return kerr.InvalidRequest.Code, "subscription name can't be empty"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	next, err := change(maps.Clone(b.meta.Image().ClientMetrics[name]))
	if err != nil {
		if errors.Is(err, errInvalidConfigRequest) {
			return kerr.InvalidRequest.Code, err.Error()
		}
		return kerr.InvalidConfig.Code, err.Error()
	}
	if _, err := clientmetrics.Parse(name, next); err != nil {
		if errors.Is(err, clientmetrics.ErrInvalidRequest) {
			return kerr.InvalidRequest.Code, err.Error()
		}
		return kerr.InvalidConfig.Code, err.Error()
	}
	if validateOnly {
		return 0, ""
	}
	if err := b.meta.SetClientMetrics(name, next); err != nil {
		b.log.Error("persisting client metrics subscription failed", "name", name, "err", err)
		return persistErrCode(err), "persisting configs failed: " + err.Error()
	}
	b.clientMetrics.Update(name, next)
	if len(next) == 0 {
		b.log.Info("client metrics subscription removed", "name", name)
	} else {
		b.log.Info("client metrics subscription changed", "name", name, "configs", next)
	}
	return 0, ""
}

// clientMetricsEdit changes a subscription: any key (validation happens on
// the whole result), list edits on metrics and match; a list edited to
// nothing is removed.
var clientMetricsEdit = configEdit{
	list: func(cur map[string]string, name string) (string, bool) {
		d, ok := clientmetrics.ConfigDef(name)
		return cur[name], ok && d.List
	},
	notList: func(op kmsg.IncrementalAlterConfigOp, name string) error {
		return fmt.Errorf("can't %s to key %s because its type is not LIST", op, name)
	},
	dropEmpty: true,
}

// describeClientMetrics lists the configs set on a subscription (none for
// an unknown one: Kafka answers without error), source
// CLIENT_METRICS_CONFIG.
func (b *Broker) describeClientMetrics(name string, want func(string) bool, r *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	cfg := b.meta.Image().ClientMetrics[name]
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		if want(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range keys {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source = k, kmsg.StringPtr(cfg[k]), kmsg.ConfigSourceClientMetricsConfig
		if d, ok := clientmetrics.ConfigDef(k); ok {
			c.ConfigType = kmsg.ConfigTypeInt
			if d.List {
				c.ConfigType = kmsg.ConfigTypeList
			}
			if r.IncludeDocumentation {
				c.Documentation = kmsg.StringPtr(d.Doc)
			}
		}
		out = append(out, c)
	}
	return out
}
