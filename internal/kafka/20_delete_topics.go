package kafka

// Behavior:
//
//   - Deletes by name (v0-v5 TopicNames, v6 Topics with name) or by id (v6).
//     The metadata record is made durable first, then the partition files are
//     removed; a crash in between is finished at the next start.
//   - Unknown name UNKNOWN_TOPIC_OR_PARTITION, unknown id UNKNOWN_TOPIC_ID.
//
// Version notes:
//   - v1 is the minimum (KIP-896).

import (
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(b *Broker, r *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name string
		id   [16]byte
	}
	var targets []target
	for _, n := range r.TopicNames {
		targets = append(targets, target{name: n})
	}
	for _, t := range r.Topics {
		if t.Topic != nil && *t.Topic != "" {
			targets = append(targets, target{name: *t.Topic})
		} else {
			targets = append(targets, target{id: t.TopicID})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		name := tg.name
		if name == "" {
			t, ok := b.meta.Image().ByID[metadata.TopicID(tg.id)]
			if !ok {
				st.TopicID = tg.id
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.Name
		}
		st.Topic = kmsg.StringPtr(name)
		if t, ok := b.meta.Image().Topics[name]; ok {
			st.TopicID = t.ID
		}
		if err := b.deleteTopic(name); err != nil {
			st.ErrorCode = createErrCode(err)
			st.ErrorMessage = kmsg.StringPtr(err.Error())
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
