package kafka

// Behavior (KIP-1000, renamed ListConfigResources by KIP-1142):
//
//   - v0 (ListClientMetricsResources) lists the CLIENT_METRICS
//     subscriptions.
//   - v1 lists the resources of the requested types, or of every
//     supported type when none is named: TOPIC (every topic), BROKER and
//     BROKER_LOGGER (this node's id), CLIENT_METRICS (the subscriptions),
//     GROUP (none: this broker has no group configs). A type outside these
//     answers UNSUPPORTED_VERSION with no resources, as Kafka does.
//   - Sorted by type, then name.
//
// Version notes:
//   - v0-v1 (flexible).

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var listableConfigTypes = []kmsg.ConfigResourceType{
	kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger,
	kmsg.ConfigResourceTypeClientMetrics, kmsg.ConfigResourceTypeGroupConfig,
}

func handleListConfigResources(b *Broker, r *kmsg.ListConfigResourcesRequest) (*kmsg.ListConfigResourcesResponse, error) {
	resp := r.ResponseKind().(*kmsg.ListConfigResourcesResponse)
	types := []kmsg.ConfigResourceType{kmsg.ConfigResourceTypeClientMetrics}
	if r.Version >= 1 {
		types = listableConfigTypes
		if len(r.ResourceTypes) > 0 {
			types = nil
			for _, t := range r.ResourceTypes {
				if !slices.Contains(listableConfigTypes, kmsg.ConfigResourceType(t)) {
					resp.ErrorCode = kerr.UnsupportedVersion.Code
					return resp, nil
				}
				types = append(types, kmsg.ConfigResourceType(t))
			}
		}
	}
	add := func(t kmsg.ConfigResourceType, name string) {
		c := kmsg.NewListConfigResourcesResponseConfigResource()
		c.Name, c.Type = name, int8(t)
		resp.ConfigResources = append(resp.ConfigResources, c)
	}
	for _, t := range listableConfigTypes { // sorted, each type once
		if !slices.Contains(types, t) {
			continue
		}
		switch t {
		case kmsg.ConfigResourceTypeTopic:
			for _, tp := range b.meta.Image().SortedTopics() {
				add(t, tp.Name)
			}
		case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
			add(t, strconv.Itoa(int(b.opts.NodeID)))
		case kmsg.ConfigResourceTypeClientMetrics:
			for _, name := range b.clientMetrics.Names() {
				add(t, name)
			}
		}
	}
	return resp, nil
}
