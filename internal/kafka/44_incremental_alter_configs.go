package kafka

// Behavior:
//
//   - TOPIC resources, applied to the topic's current explicit configs:
//     SET sets a value; DELETE removes it (back to the default; deleting a
//     config that is not set is fine); APPEND and SUBTRACT add or remove
//     items of a list config (cleanup.policy) starting from its effective
//     value, and answer INVALID_CONFIG for other configs. Unknown keys and
//     bad values: INVALID_CONFIG with a message naming the key and the
//     allowed values; nothing changes then. An unknown op, a SET without a
//     value or a key given twice: INVALID_REQUEST. Unknown topic:
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - BROKER resources (dynamic broker configs, see 33_alter_configs.go):
//     SET and DELETE (back to the static value); APPEND and SUBTRACT:
//     INVALID_CONFIG (no dynamic broker config is a list).
//   - CLIENT_METRICS resources (KIP-714 subscriptions): SET creates or
//     changes a key, DELETE removes it (the last one deletes the
//     subscription), APPEND / SUBTRACT edit the list keys metrics and
//     match (other keys: INVALID_CONFIG); the result is validated as for
//     AlterConfigs (33_alter_configs.go).
//   - validate_only, persistence, when changes take effect and which broker
//     keys are dynamic are as for AlterConfigs (33_alter_configs.go).
//
// Version notes:
//   - v0-v1; v1 is flexible.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(b *Broker, r *kmsg.IncrementalAlterConfigsRequest) (*kmsg.IncrementalAlterConfigsResponse, error) {
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var code int16
		var msg string
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeBroker:
			code, msg = b.alterBrokerConfigs(rr.ResourceName, r.ValidateOnly, brokerConfigEdit.incremental(rr.Configs))
		case kmsg.ConfigResourceTypeClientMetrics:
			code, msg = b.alterClientMetrics(rr.ResourceName, r.ValidateOnly, clientMetricsEdit.incremental(rr.Configs))
		case kmsg.ConfigResourceTypeTopic:
			code, msg = b.alterTopicConfigs(rr.ResourceName, r.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
				return b.topicConfigEdit().incremental(rr.Configs)(cur)
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

// topicConfigEdit changes a topic's configs: known topic configs only; a
// list edit starts from the topic's value or, unset, the broker default.
func (b *Broker) topicConfigEdit() configEdit {
	return configEdit{
		check: func(name string) error {
			if _, ok := metadata.TopicConfigDef(name); !ok {
				return fmt.Errorf("unknown topic config %q", name)
			}
			return nil
		},
		list: func(cur map[string]string, name string) (string, bool) {
			d, _ := metadata.TopicConfigDef(name)
			if d.Type != metadata.TypeList {
				return "", false
			}
			if v, ok := cur[name]; ok {
				return v, true
			}
			return b.settings().defaults[name], true
		},
		notList: listOpNotAllowed,
	}
}

// editList adds (or removes) the comma-separated items of change to (from)
// list, keeping order and skipping duplicates.
func editList(list, change string, add bool) string {
	items := splitList(list)
	for _, it := range splitList(change) {
		i := slices.Index(items, it)
		switch {
		case add && i < 0:
			items = append(items, it)
		case !add && i >= 0:
			items = slices.Delete(items, i, i+1)
		}
	}
	return strings.Join(items, ",")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
