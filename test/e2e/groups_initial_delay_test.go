package e2e

// group.initial.rebalance.delay.ms with real clients: librdkafka consumers
// (Python confluent_kafka) started together join a new group within the
// broker's initial delay and form one generation, each assigned once.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pyGroupMember is one groups_consumer.py process and what it reported.
type pyGroupMember struct {
	mu       sync.Mutex
	assigned [][]int32
	seen     map[int32]map[int64]bool
}

func startPyGroupMember(t *testing.T, b *Broker, topic, group string) *pyGroupMember {
	t.Helper()
	m := &pyGroupMember{seen: map[int32]map[int64]bool{}}
	py := exec.Command(clientsPythonBin, "-u", "-B", filepath.Join("python", "groups_consumer.py"),
		"--bootstrap", b.Addr, "--topic", topic, "--group", group)
	stdin, _ := py.StdinPipe()
	stdout, _ := py.StdoutPipe()
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); py.Process.Kill(); py.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				Assigned *[]int32 `json:"assigned"`
				P        *int32   `json:"p"`
				O        int64    `json:"o"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			m.mu.Lock()
			switch {
			case ev.Assigned != nil:
				m.assigned = append(m.assigned, *ev.Assigned)
			case ev.P != nil:
				if m.seen[*ev.P] == nil {
					m.seen[*ev.P] = map[int64]bool{}
				}
				m.seen[*ev.P][ev.O] = true
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// TestGroupsInitialRebalanceDelayOneGeneration: with Kafka's default 3 s
// initial delay, three librdkafka consumers subscribing at once end in ONE
// generation (generation 1, each member assigned exactly once: no second,
// eager rebalance) and together consume every record of every partition.
func TestGroupsInitialRebalanceDelayOneGeneration(t *testing.T) {
	b := StartBroker(t, "--group-initial-rebalance-delay-ms", "3000")
	adm := clientsAdmin(t, b)
	const topic, group, parts, perPart = "initial-delay", "together", 6, 50
	clientsCreateTopic(t, adm, topic, parts, nil)
	groupsProduce(t, b, topic, 0, parts*perPart)

	var members []*pyGroupMember
	for range 3 {
		members = append(members, startPyGroupMember(t, b, topic, group))
	}

	// Every record is consumed, by the member it was assigned to.
	CheckFor(t, 60*time.Second, func() error {
		n := 0
		for _, m := range members {
			m.mu.Lock()
			for _, offs := range m.seen {
				n += len(offs)
			}
			m.mu.Unlock()
		}
		if n != parts*perPart {
			return fmt.Errorf("%d of %d records consumed", n, parts*perPart)
		}
		return nil
	})
	as, err := groupsAssignments(t, adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("%d members: %v", len(as), as)
	}
	owned := map[int32]bool{}
	for name, ps := range as {
		if len(ps) != parts/3 {
			t.Fatalf("member %s owns %v, want %d partitions: %v", name, ps, parts/3, as)
		}
		for _, p := range ps {
			owned[p] = true
		}
	}
	if len(owned) != parts {
		t.Fatalf("partitions owned: %v", as)
	}
	for i, m := range members {
		m.mu.Lock()
		assigned := fmt.Sprint(m.assigned)
		n := len(m.assigned)
		m.mu.Unlock()
		if n != 1 {
			t.Fatalf("consumer %d was assigned %d times (%s): more than one generation", i, n, assigned)
		}
	}

	// The generation is 1: a Heartbeat naming generation 1 is accepted for
	// every member (any other generation answers ILLEGAL_GENERATION).
	ds, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	cl := b.Client(t)
	for _, dm := range ds[group].Members {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = group, dm.MemberID, 1
		resp, err := req.RequestWith(Ctx(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatalf("heartbeat of %s with generation 1: %v", dm.MemberID, err)
		}
	}
}
