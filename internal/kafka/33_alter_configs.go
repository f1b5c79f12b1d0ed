package kafka

// Behavior:
//
//   - TOPIC resources: the request's configs replace the topic's explicit
//     configs as a whole (Kafka's non-incremental semantics: a config not
//     listed returns to its default; a null value is the same as not listing
//     it). Every key must be known and every value valid, else
//     INVALID_CONFIG with a message naming the key and the allowed values;
//     nothing is changed then. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - validate_only checks everything and changes nothing.
//   - A change is fsynced to the metadata log before it is answered (it
//     survives restarts) and takes effect at once: produce checks
//     (max.message.bytes, message.timestamp.*) on the next request,
//     segment.bytes / segment.ms at the next append's roll decision of every
//     open partition, retention.* and cleanup.policy at the next retention
//     pass. DescribeConfigs then shows source DYNAMIC_TOPIC_CONFIG.
//   - BROKER resources (name "" or this node's id; another id:
//     INVALID_REQUEST): the listed configs replace the dynamic broker configs
//     as a whole (a dynamic config not listed returns to its static value).
//     Dynamic keys: auto.create.topics.enable, num.partitions,
//     message.max.bytes, log.segment.bytes, log.roll.ms, log.retention.ms,
//     log.retention.bytes, offsets.retention.minutes,
//     group.initial.rebalance.delay.ms (metadata.BrokerConfigDefs;
//     values checked like the flags). Any other key or a bad value:
//     INVALID_CONFIG naming the key. Persisted in the metadata log, effective
//     at once (topic defaults, auto-creation, segment limits of open
//     partitions, next retention pass, next offsets-expiry sweep, next
//     rebalance of an empty group); see
//     broker_configs.go. BROKER_LOGGER and other types: INVALID_REQUEST.
//   - CLIENT_METRICS resources (KIP-714 subscriptions, client_metrics.go):
//     the listed configs replace the subscription's; none left deletes it.
//     Keys metrics, interval.ms, match; an empty name, an unknown key or an
//     interval outside 100-3600000: INVALID_REQUEST; an interval that is
//     not an integer or a bad match pattern: INVALID_CONFIG (Kafka's
//     answers).
//
// Version notes:
//   - v0-v2 (KIP-896 removed none); v2 is flexible.

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(b *Broker, r *kmsg.AlterConfigsRequest) (*kmsg.AlterConfigsResponse, error) {
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var code int16
		var msg string
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeBroker:
			code, msg = b.alterBrokerConfigs(rr.ResourceName, r.ValidateOnly, brokerConfigEdit.replace(rr.Configs))
		case kmsg.ConfigResourceTypeClientMetrics:
			code, msg = b.alterClientMetrics(rr.ResourceName, r.ValidateOnly, clientMetricsEdit.replace(rr.Configs))
		case kmsg.ConfigResourceTypeTopic:
			code, msg = b.alterTopicConfigs(rr.ResourceName, r.ValidateOnly, func(_ map[string]string) (map[string]string, error) {
				next := map[string]string{}
				for _, c := range rr.Configs {
					if _, dup := next[c.Name]; dup {
						return nil, fmt.Errorf("%w: config %q given twice", errInvalidConfigRequest, c.Name)
					}
					if c.Value != nil {
						next[c.Name] = *c.Value
					}
				}
				return next, nil
			})
		default:
			code, msg = nonTopicConfigResource(rr.ResourceType)
		}
		if code != 0 {
			res.ErrorCode, res.ErrorMessage = code, kmsg.StringPtr(msg)
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

var errInvalidConfigRequest = errors.New("kafka: invalid config request")

// nonTopicConfigResource answers alterations of resources other than topics
// and brokers.
func nonTopicConfigResource(t kmsg.ConfigResourceType) (int16, string) {
	return kerr.InvalidRequest.Code, "unsupported resource type " + t.String()
}

// alterTopicConfigs computes a topic's new explicit configs with change
// (given a copy of the current ones), validates them and, unless
// validateOnly, persists and applies them. It returns the Kafka error code
// and message for the resource.
func (b *Broker) alterTopicConfigs(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) (int16, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.meta.Image().Topics[name]
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, "unknown topic " + strconv.Quote(name)
	}
	if t.Internal {
		return kerr.InvalidRequest.Code, "internal topic configs cannot be changed"
	}
	next, err := change(maps.Clone(t.Configs))
	if err != nil {
		if errors.Is(err, errInvalidConfigRequest) {
			return kerr.InvalidRequest.Code, err.Error()
		}
		return kerr.InvalidConfig.Code, err.Error()
	}
	if err := metadata.ValidateTopicConfigs(next); err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	if validateOnly {
		return 0, ""
	}
	if err := b.meta.SetTopicConfigs(name, next); err != nil {
		b.log.Error("persisting topic configs failed", "topic", name, "err", err)
		return persistErrCode(err), "persisting configs failed: " + err.Error()
	}
	t = b.meta.Image().Topics[name]
	if old := b.topics[name]; old != nil {
		ts := &topicState{meta: t, parts: old.parts}
		b.topics[name] = ts
		b.ownChange(name)
		segBytes, segAge := b.topicInt(t, "segment.bytes"), time.Duration(b.topicInt(t, "segment.ms"))*time.Millisecond
		for _, p := range ts.parts {
			p.SetSegmentLimits(segBytes, segAge)
		}
	}
	b.log.Info("topic configs changed", "topic", name, "configs", next)
	return 0, ""
}
