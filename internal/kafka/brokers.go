package kafka

import "github.com/chronik-stream/chronik/internal/metadata"

// endpoint is a broker as Metadata and DescribeCluster list it.
type endpoint struct {
	id     int32
	host   string
	port   int32
	rack   *string
	fenced bool
}

// brokerList returns the brokers registered with the metadata quorum (by
// id; fenced ones only with withFenced), each at its first listener. This
// broker is always listed: it answers, so it is up, even before its own
// registration reached the image it reads.
func (b *Broker) brokerList(im *metadata.Image, withFenced bool) []endpoint {
	var out []endpoint
	self := false
	for _, br := range im.SortedBrokers() {
		if br.ID == b.opts.NodeID {
			self = true
			out = append(out, b.selfEndpoint(br.Rack))
			continue
		}
		if (br.Fenced && !withFenced) || len(br.Listeners) == 0 {
			continue
		}
		e := endpoint{id: br.ID, host: br.Listeners[0].Host, port: br.Listeners[0].Port, fenced: br.Fenced}
		if br.Rack != "" {
			e.rack = &br.Rack
		}
		out = append(out, e)
	}
	if !self {
		out = append(out, b.selfEndpoint(""))
	}
	return out
}

func (b *Broker) selfEndpoint(rack string) endpoint {
	e := endpoint{id: b.opts.NodeID, host: b.opts.AdvertisedHost, port: b.opts.AdvertisedPort}
	if rack != "" {
		e.rack = &rack
	}
	return e
}
