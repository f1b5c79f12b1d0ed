package kafka

// Behavior:
//
//   - Topic resources list every known topic config (or the requested
//     names) with the effective value; source DYNAMIC_TOPIC_CONFIG for values
//     set on the topic, DEFAULT_CONFIG otherwise. Unknown topic:
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - Topic configs not set on the topic whose default comes from a dynamic
//     broker config (max.message.bytes, segment.bytes, segment.ms,
//     retention.ms, retention.bytes) show that value with source
//     DYNAMIC_DEFAULT_BROKER_CONFIG; synonyms then list the broker key's
//     dynamic and static values.
//   - Broker resources (name "" or this node's id) list the broker settings,
//     STATIC_BROKER_CONFIG when set by the operator, DEFAULT_CONFIG when not.
//     Dynamic broker configs (broker_configs.go) are ReadOnly=false and,
//     when set, show the dynamic value with source
//     DYNAMIC_DEFAULT_BROKER_CONFIG (whether set via name "" or the node id:
//     one cluster-wide map) and the static value as a synonym; every other
//     key is ReadOnly. Another id: INVALID_REQUEST. Broker loggers:
//     INVALID_REQUEST.
//   - CLIENT_METRICS resources (KIP-714 subscriptions, client_metrics.go)
//     list the configs set, source CLIENT_METRICS_CONFIG; an unknown
//     subscription has none (no error, as in Kafka); an empty name:
//     INVALID_REQUEST.
//   - Synonyms (v1+) and documentation (v3+) when asked for.
//
// Version notes:
//   - v1 is the minimum (KIP-896).

import (
	"slices"
	"sort"
	"strconv"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(b *Broker, r *kmsg.DescribeConfigsRequest) (*kmsg.DescribeConfigsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := b.meta.Image().Topics[rr.ResourceName]
			if !ok {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				res.ErrorMessage = kmsg.StringPtr("unknown topic " + strconv.Quote(rr.ResourceName))
				break
			}
			res.Configs = b.describeTopicConfigs(t, want, r)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.opts.NodeID)) {
				res.ErrorCode = kerr.InvalidRequest.Code
				res.ErrorMessage = kmsg.StringPtr("unknown broker " + strconv.Quote(rr.ResourceName))
				break
			}
			res.Configs = b.describeBrokerConfigs(want, r)
		case kmsg.ConfigResourceTypeClientMetrics:
			if rr.ResourceName == "" {
				res.ErrorCode = kerr.InvalidRequest.Code
				res.ErrorMessage = kmsg.StringPtr("client metrics subscription name must not be empty")
				break
			}
			res.Configs = b.describeClientMetrics(rr.ResourceName, want, r)
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			res.ErrorMessage = kmsg.StringPtr("unsupported resource type " + rr.ResourceType.String())
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (b *Broker) describeTopicConfigs(t *metadata.Topic, want func(string) bool, r *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	settings := b.settings()
	defaults := settings.defaults
	static := b.staticBrokerValues()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for i := range metadata.TopicConfigDefs {
		d := &metadata.TopicConfigDefs[i]
		if !want(d.Name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = d.Name
		c.ConfigType = kmsg.ConfigType(d.Type)
		v, set := t.Configs[d.Name]
		if set {
			c.Value = kmsg.StringPtr(v)
			c.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		bk := brokerKeyOfTopicConfig[d.Name]
		dv, dyn := settings.dynamic[bk]
		if !set {
			c.Value = kmsg.StringPtr(defaults[d.Name])
			c.Source = kmsg.ConfigSourceDefaultConfig
			c.IsDefault = true
			if dyn && bk != "" {
				c.Source = kmsg.ConfigSourceDynamicDefaultBrokerConfig
				c.IsDefault = false
			}
		}
		if r.IncludeSynonyms {
			if set {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Name, v, kmsg.ConfigSourceDynamicTopicConfig))
			}
			if dyn && bk != "" {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(bk, dv, kmsg.ConfigSourceDynamicDefaultBrokerConfig),
					synonym(bk, static[bk], kmsg.ConfigSourceStaticBrokerConfig))
			} else {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Name, defaults[d.Name], kmsg.ConfigSourceDefaultConfig))
			}
		}
		if r.IncludeDocumentation {
			c.Documentation = kmsg.StringPtr(d.Doc)
		}
		out = append(out, c)
	}
	return out
}

func (b *Broker) describeBrokerConfigs(want func(string) bool, r *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	cfgs := append([]BrokerConfig(nil), b.opts.BrokerConfigs...)
	static := b.staticBrokerValues()
	for i := range metadata.BrokerConfigDefs {
		name := metadata.BrokerConfigDefs[i].Name
		if !slices.ContainsFunc(cfgs, func(c BrokerConfig) bool { return c.Name == name }) {
			cfgs = append(cfgs, BrokerConfig{Name: name, Value: static[name]})
		}
	}
	dynamic := b.settings().dynamic
	sort.Slice(cfgs, func(i, j int) bool { return cfgs[i].Name < cfgs[j].Name })
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, bc := range cfgs {
		if !want(bc.Name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = bc.Name
		def, isDynamic := metadata.BrokerConfigDef(bc.Name)
		c.ReadOnly = !isDynamic
		if isDynamic {
			c.ConfigType = kmsg.ConfigType(def.Type)
			if r.IncludeDocumentation {
				c.Documentation = kmsg.StringPtr(def.Doc + " (dynamic)")
			}
		}
		c.IsSensitive = bc.Sensitive
		if !bc.Sensitive {
			c.Value = kmsg.StringPtr(bc.Value)
		}
		staticSrc := kmsg.ConfigSourceStaticBrokerConfig
		if bc.Default {
			staticSrc = kmsg.ConfigSourceDefaultConfig
		}
		c.Source = staticSrc
		c.IsDefault = bc.Default
		dv, dyn := dynamic[bc.Name]
		if dyn {
			c.Value = kmsg.StringPtr(dv)
			c.Source = kmsg.ConfigSourceDynamicDefaultBrokerConfig
			c.IsDefault = false
		}
		if r.IncludeSynonyms {
			if dyn {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(bc.Name, dv, kmsg.ConfigSourceDynamicDefaultBrokerConfig))
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(bc.Name, bc.Value, staticSrc))
		}
		out = append(out, c)
	}
	return out
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, kmsg.StringPtr(value), src
	return s
}
