package cluster_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBuild()
	os.Exit(code)
}

// ask sends req to exactly the broker at addr (not routed by the client).
func ask[R kmsg.Response](t *testing.T, addr string, req kmsg.Request) (R, error) {
	t.Helper()
	var zero R
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0))
	if err != nil {
		return zero, err
	}
	defer cl.Close()
	resp, err := cl.SeedBrokers()[0].Request(cluster.Ctx(t, 5*time.Second), req)
	if err != nil {
		return zero, err
	}
	return resp.(R), nil
}

// quorumView is DescribeQuorum as one broker answers it.
type quorumView struct {
	leader int32
	voters []int32 // only from the leader
}

func describeQuorum(t *testing.T, addr string) (quorumView, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := ask[*kmsg.DescribeQuorumResponse](t, addr, req)
	if err != nil {
		return quorumView{}, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorumView{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumView{}, fmt.Errorf("DescribeQuorum answered %d topics", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	v := quorumView{leader: p.LeaderID}
	for _, r := range p.CurrentVoters {
		v.voters = append(v.voters, r.ReplicaID)
	}
	slices.Sort(v.voters)
	return v, nil
}

// registered returns the unfenced brokers at addr's view, as id@host:port.
func registered(t *testing.T, addr string) ([]string, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := ask[*kmsg.DescribeClusterResponse](t, addr, req)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	var out []string
	for _, b := range resp.Brokers {
		if !b.IsFenced {
			out = append(out, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
		}
	}
	slices.Sort(out)
	return out, nil
}

// agreedLeader is the leader every node in ids reports (an error unless
// they all name the same one, not among exclude).
func agreedLeader(t *testing.T, c *cluster.Cluster, ids []int, exclude int) (int, error) {
	leader := int32(-1)
	for _, id := range ids {
		v, err := describeQuorum(t, c.Node(id).KafkaAddr())
		if err != nil {
			return 0, fmt.Errorf("node %d: DescribeQuorum: %w", id, err)
		}
		if v.leader <= 0 || int(v.leader) == exclude {
			return 0, fmt.Errorf("node %d: quorum leader %d", id, v.leader)
		}
		if leader >= 0 && v.leader != leader {
			return 0, fmt.Errorf("nodes disagree on the leader: %d and %d", leader, v.leader)
		}
		leader = v.leader
	}
	return int(leader), nil
}

func wantRegistered(c *cluster.Cluster) []string {
	var want []string
	for _, nd := range c.Nodes() {
		want = append(want, fmt.Sprintf("%d@%s", nd.ID, nd.KafkaAddr()))
	}
	slices.Sort(want)
	return want
}

// TestThreeNodeQuorum: three brokers form one quorum with every broker
// registered; killing the leader's process elects another among the other
// two, which still create topics; the killed node, restarted, registers
// again.
func TestThreeNodeQuorum(t *testing.T) {
	start := time.Now()
	c := cluster.Start(t, 3, "--broker-session-timeout-ms", "3000", "--broker-heartbeat-interval-ms", "500")
	t.Logf("3 brokers ready in %v", time.Since(start).Round(time.Millisecond))
	all := []int{1, 2, 3}
	want := wantRegistered(c)

	// Every broker registered, as each node sees it; one leader, 3 voters.
	var leader int
	cluster.WaitFor(t, 15*time.Second, func() error {
		for _, id := range all {
			got, err := registered(t, c.Node(id).KafkaAddr())
			if err != nil {
				return fmt.Errorf("node %d: DescribeCluster: %w", id, err)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("node %d: unfenced brokers %v, want %v", id, got, want)
			}
		}
		var err error
		if leader, err = agreedLeader(t, c, all, 0); err != nil {
			return err
		}
		v, err := describeQuorum(t, c.Node(leader).KafkaAddr())
		if err != nil {
			return fmt.Errorf("leader %d: %w", leader, err)
		}
		if !slices.Equal(v.voters, []int32{1, 2, 3}) {
			return fmt.Errorf("leader %d reports voters %v, want [1 2 3]", leader, v.voters)
		}
		return nil
	})
	t.Logf("quorum leader: node %d", leader)

	// The status command says the same.
	out, err := exec.Command(cluster.Build(t), "cluster", "status", c.Node(leader).KafkaAddr()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "brokers       3") ||
		!strings.Contains(string(out), fmt.Sprintf("metadata quorum: leader %d", leader)) {
		t.Errorf("chronik-server cluster status: %v\n%s", err, out)
	}

	// Kill the leader's process: the other two elect one of themselves.
	c.Node(leader).Kill()
	killed := time.Now()
	var rest []int
	for _, id := range all {
		if id != leader {
			rest = append(rest, id)
		}
	}
	var next int
	cluster.WaitFor(t, 15*time.Second, func() error {
		var err error
		next, err = agreedLeader(t, c, rest, leader)
		return err
	})
	t.Logf("node %d killed; node %d leads after %v", leader, next, time.Since(killed).Round(time.Millisecond))

	// Creating a topic still works through the survivors: it succeeds or
	// is refused with a Kafka error (placement is not asserted here).
	var seeds []string
	for _, id := range rest {
		seeds = append(seeds, c.Node(id).KafkaAddr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(cluster.Ctx(t, 15*time.Second), 3, 1, nil, "after-failover")
	if err != nil {
		t.Fatalf("CreateTopics after the failover: %v", err)
	}
	var ke *kerr.Error
	if resp.Err != nil && !errors.As(resp.Err, &ke) {
		t.Fatalf("CreateTopics after the failover: %v (not a Kafka error)", resp.Err)
	}
	t.Logf("CreateTopics after the failover: err=%v id=%v", resp.Err, resp.ID)

	// The killed node comes back and registers again.
	c.Node(leader).Restart()
	cluster.WaitFor(t, 15*time.Second, func() error {
		for _, id := range all {
			got, err := registered(t, c.Node(id).KafkaAddr())
			if err != nil {
				return fmt.Errorf("node %d: DescribeCluster: %w", id, err)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("node %d: unfenced brokers %v, want %v", id, got, want)
			}
		}
		_, err := agreedLeader(t, c, all, 0)
		return err
	})
	t.Logf("node %d restarted and registered again; total %v", leader, time.Since(start).Round(time.Millisecond))
}

// TestIsolateLeader: cutting every link of the quorum leader (its process
// still runs) makes the other two elect one of themselves; healing the
// links brings all three back to one leader.
func TestIsolateLeader(t *testing.T) {
	c := cluster.Start(t, 3)
	all := []int{1, 2, 3}
	var leader int
	cluster.WaitFor(t, 15*time.Second, func() error {
		var err error
		leader, err = agreedLeader(t, c, all, 0)
		return err
	})
	c.Isolate(leader)
	var rest []int
	for _, id := range all {
		if id != leader {
			rest = append(rest, id)
		}
	}
	isolated := time.Now()
	var next int
	cluster.WaitFor(t, 15*time.Second, func() error {
		var err error
		next, err = agreedLeader(t, c, rest, leader)
		return err
	})
	t.Logf("node %d isolated; node %d leads after %v", leader, next, time.Since(isolated).Round(time.Millisecond))
	c.Heal(leader)
	cluster.WaitFor(t, 15*time.Second, func() error {
		_, err := agreedLeader(t, c, all, 0)
		return err
	})
}
