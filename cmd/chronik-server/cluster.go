package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterStatus prints what a running broker says of its cluster: the
// brokers (DescribeCluster, fenced ones included) and the metadata quorum
// (DescribeQuorum). addr is the broker to ask; empty: this config's own
// Kafka address (a wildcard bind asked on 127.0.0.1).
func clusterStatus(cfg *config.Config, addr string, stdout, stderr io.Writer) int {
	if addr == "" {
		host, port := cfg.AdvertisedHostPort(cfg.KafkaListener().Port)
		addr = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "chronik-server cluster status: broker %s: %v\n"+
			"(is it running? name a broker: chronik-server cluster status HOST:PORT)\n", addr, err)
		return 1
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(5*time.Second), kgo.DialTimeout(5*time.Second))
	if err != nil {
		return fail(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeFencedBrokers = true
	cluster, err := dc.RequestWith(ctx, cl)
	if err != nil {
		return fail(err)
	}
	dq := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	t.Partitions = append(t.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	dq.Topics = append(dq.Topics, t)
	quorum, err := dq.RequestWith(ctx, cl)
	if err != nil {
		return fail(err)
	}

	// Partitions led per broker, and those without a leader (their broker
	// fenced or gone), from one Metadata request for every topic.
	md := kmsg.NewPtrMetadataRequest()
	mdr, err := md.RequestWith(ctx, cl)
	if err != nil {
		return fail(err)
	}
	led, offline, total := map[int32]int{}, 0, 0
	for _, t := range mdr.Topics {
		for _, p := range t.Partitions {
			total++
			if p.Leader < 0 {
				offline++
			} else {
				led[p.Leader]++
			}
		}
	}

	fmt.Fprintf(stdout, "cluster id    %s\n", cluster.ClusterID)
	fmt.Fprintf(stdout, "partitions    %d, %d without a leader\n", total, offline)
	fmt.Fprintf(stdout, "brokers       %d\n", len(cluster.Brokers))
	for _, b := range cluster.Brokers {
		state := "up"
		if b.IsFenced {
			state = "fenced (no heartbeat within broker.session.timeout.ms)"
		}
		rack := "-"
		if b.Rack != nil {
			rack = *b.Rack
		}
		fmt.Fprintf(stdout, "  %-6d %-28s rack %-10s leads %-7d %s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack, led[b.NodeID], state)
	}
	if len(quorum.Topics) != 1 || len(quorum.Topics[0].Partitions) != 1 {
		return fail(fmt.Errorf("DescribeQuorum answered %d topics", len(quorum.Topics)))
	}
	p := quorum.Topics[0].Partitions[0]
	if p.ErrorCode != 0 && p.LeaderID >= 0 {
		// Only the quorum's leader knows every voter's progress: ask it
		// (the client learnt its endpoint from DescribeCluster's metadata).
		if resp, err := cl.Broker(int(p.LeaderID)).Request(ctx, dq); err == nil {
			if lq := resp.(*kmsg.DescribeQuorumResponse); len(lq.Topics) == 1 && len(lq.Topics[0].Partitions) == 1 &&
				lq.Topics[0].Partitions[0].ErrorCode == 0 {
				p = lq.Topics[0].Partitions[0]
			}
		}
	}
	fmt.Fprintf(stdout, "metadata quorum: leader %d, epoch %d, high watermark %d", p.LeaderID, p.LeaderEpoch, p.HighWatermark)
	if p.ErrorCode != 0 {
		fmt.Fprintf(stdout, " (asked broker is not the leader: error %d; ask broker %d for the voters' progress)", p.ErrorCode, p.LeaderID)
	}
	fmt.Fprintln(stdout)
	row := func(kind string, r kmsg.DescribeQuorumResponseTopicPartitionReplicaState) {
		end := "log end unknown"
		if r.LogEndOffset >= 0 {
			end = fmt.Sprintf("log end %d (%d behind)", r.LogEndOffset, max(p.HighWatermark-r.LogEndOffset, 0))
		}
		lead := ""
		if r.ReplicaID == p.LeaderID {
			lead = ", leader"
		}
		fmt.Fprintf(stdout, "  %-6d %s, %s%s\n", r.ReplicaID, kind, end, lead)
	}
	for _, v := range p.CurrentVoters {
		row("voter", v)
	}
	for _, o := range p.Observers {
		row("observer", o)
	}
	return 0
}
