package server

import (
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/metadata"
)

// groupTopics is the metadata image as the group coordinator resolves topics
// when it restores consumer groups at start (their records name topics by
// id).
type groupTopics struct{ im *metadata.Image }

func (v groupTopics) Topic(name string) (group.TopicMeta, bool) {
	t, ok := v.im.Topics[name]
	if !ok {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.Name, ID: t.ID, Partitions: t.Partitions}, true
}

func (v groupTopics) TopicByID(id [16]byte) (group.TopicMeta, bool) {
	t, ok := v.im.ByID[metadata.TopicID(id)]
	if !ok {
		return group.TopicMeta{}, false
	}
	return group.TopicMeta{Name: t.Name, ID: t.ID, Partitions: t.Partitions}, true
}

func (v groupTopics) Names() []string {
	out := make([]string, 0, len(v.im.Topics))
	for n := range v.im.Topics {
		out = append(out, n)
	}
	return out
}
