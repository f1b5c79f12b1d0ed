package kafka

// Dynamic broker configs: the keys in metadata.BrokerConfigDefs can be set at
// runtime with AlterConfigs / IncrementalAlterConfigs on the BROKER resource
// (name "" for the cluster default or this node's id; both write the same
// map). They are persisted in the metadata log (record "broker_configs") and
// override the static values (flags, CHRONIK_* environment, config file).
// DescribeConfigs shows them with source DYNAMIC_DEFAULT_BROKER_CONFIG
// whichever name set them, since a single map serves the whole cluster.

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
)

// brokerSettings is an immutable snapshot of the effective broker settings.
type brokerSettings struct {
	autoCreate bool
	partitions int32
	defaults   map[string]string // topic config defaults
	dynamic    map[string]string // dynamic broker configs set (read-only)
}

// settings returns the current snapshot.
func (b *Broker) settings() *brokerSettings { return b.dyn.Load() }

// refreshBrokerSettings recomputes the snapshot from the options and the
// metadata image's dynamic broker configs.
func (b *Broker) refreshBrokerSettings() {
	dyn := b.meta.Image().BrokerConfigs
	s := &brokerSettings{
		autoCreate: b.opts.AutoCreateTopics, partitions: b.opts.DefaultPartitions,
		defaults: metadata.TopicDefaults(b.opts.Defaults.Apply(dyn)), dynamic: dyn,
	}
	if v, ok := dyn["auto.create.topics.enable"]; ok {
		s.autoCreate = v == "true"
	}
	if v, ok := dyn["num.partitions"]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			s.partitions = int32(n)
		}
	}
	b.dyn.Store(s)
}

// staticBrokerValues are the static values of the dynamic broker configs.
func (b *Broker) staticBrokerValues() map[string]string {
	d := b.opts.Defaults
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return map[string]string{
		"auto.create.topics.enable":        strconv.FormatBool(b.opts.AutoCreateTopics),
		"num.partitions":                   i(int64(b.opts.DefaultPartitions)),
		"message.max.bytes":                i(int64(d.MessageMaxBytes)),
		"log.segment.bytes":                i(d.SegmentBytes),
		"log.roll.ms":                      i(d.SegmentMs),
		"log.retention.ms":                 i(d.RetentionMs),
		"log.retention.bytes":              i(d.RetentionBytes),
		"offsets.retention.minutes":        i(int64(b.opts.OffsetsRetention / time.Minute)),
		"group.initial.rebalance.delay.ms": i(b.opts.InitialRebalanceDelay.Milliseconds()),
	}
}

// applyGroupSettings hands the effective offsets.retention.minutes and
// group.initial.rebalance.delay.ms to the group coordinator (if installed).
func (b *Broker) applyGroupSettings() {
	g := b.groups.Load()
	if g == nil {
		return
	}
	dyn := b.settings().dynamic
	d := b.opts.OffsetsRetention
	if v, ok := dyn["offsets.retention.minutes"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(n) * time.Minute
		}
	}
	g.SetOffsetsRetention(d)
	delay := b.opts.InitialRebalanceDelay
	if v, ok := dyn["group.initial.rebalance.delay.ms"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			delay = time.Duration(n) * time.Millisecond
		}
	}
	g.SetInitialRebalanceDelay(delay)
}

// brokerKeyOfTopicConfig names the broker config a topic config defaults to.
var brokerKeyOfTopicConfig = map[string]string{
	"max.message.bytes": "message.max.bytes",
	"segment.bytes":     "log.segment.bytes",
	"segment.ms":        "log.roll.ms",
	"retention.ms":      "log.retention.ms",
	"retention.bytes":   "log.retention.bytes",
}

// checkDynamicBrokerKey reports an error (INVALID_CONFIG) for a key that
// cannot be changed at runtime.
func checkDynamicBrokerKey(name string) error {
	if _, ok := metadata.BrokerConfigDef(name); ok {
		return nil
	}
	return fmt.Errorf("broker config %q is static (set by flag, CHRONIK_* environment or config file) and cannot be altered at runtime", name)
}

// alterBrokerConfigs computes the new dynamic broker configs with change
// (given a copy of the current ones), validates them and, unless
// validateOnly, persists and applies them.
func (b *Broker) alterBrokerConfigs(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) (int16, string) {
	if name != "" && name != strconv.Itoa(int(b.opts.NodeID)) {
		return kerr.InvalidRequest.Code, "unknown broker " + strconv.Quote(name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	next, err := change(maps.Clone(b.meta.Image().BrokerConfigs))
	if err != nil {
		if errors.Is(err, errInvalidConfigRequest) {
			return kerr.InvalidRequest.Code, err.Error()
		}
		return kerr.InvalidConfig.Code, err.Error()
	}
	for k := range next {
		if err := checkDynamicBrokerKey(k); err != nil {
			return kerr.InvalidConfig.Code, err.Error()
		}
	}
	if err := metadata.ValidateBrokerConfigs(next); err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	if v, ok := next["message.max.bytes"]; ok && b.opts.MaxRequestBytes > 0 {
		if n, _ := strconv.ParseInt(v, 10, 64); n > int64(b.opts.MaxRequestBytes) {
			return kerr.InvalidConfig.Code, fmt.Sprintf("invalid value %q for message.max.bytes: must be at most socket.request.max.bytes (%d)", v, b.opts.MaxRequestBytes)
		}
	}
	if validateOnly {
		return 0, ""
	}
	if err := b.meta.SetBrokerConfigs(next); err != nil {
		b.log.Error("persisting broker configs failed", "err", err)
		return persistErrCode(err), "persisting configs failed: " + err.Error()
	}
	b.refreshBrokerSettings()
	b.applyGroupSettings()
	for _, ts := range b.topics {
		segBytes, segAge := b.topicInt(ts.meta, "segment.bytes"), time.Duration(b.topicInt(ts.meta, "segment.ms"))*time.Millisecond
		for _, p := range ts.parts {
			p.SetSegmentLimits(segBytes, segAge)
		}
	}
	b.log.Info("dynamic broker configs changed", "configs", next)
	return 0, ""
}

// brokerConfigEdit changes the dynamic broker configs: only the keys in
// metadata.BrokerConfigDefs, and no list edits (no broker list config is
// dynamic).
var brokerConfigEdit = configEdit{check: checkDynamicBrokerKey, notList: listOpNotAllowed}
