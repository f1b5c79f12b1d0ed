package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupsDescribeShowsMembers: admin tools see a live member with its
// client id and host, as Kafka reports them.
func TestGroupsDescribeShowsMembers(t *testing.T) {
	b := StartBroker(t)
	ctx := Ctx(t, 30*time.Second)
	adm := kadm.NewClient(b.Client(t))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "described"); err != nil {
		t.Fatal(err)
	}
	member := b.Client(t, kgo.ConsumerGroup("described-group"), kgo.ConsumeTopics("described"),
		kgo.ClientID("describe-me"), kgo.FetchMaxWait(100*time.Millisecond))
	go member.PollFetches(ctx) // joins the group
	CheckFor(t, 20*time.Second, func() error {
		described, err := adm.DescribeGroups(ctx, "described-group")
		if err != nil {
			return err
		}
		g := described["described-group"]
		if g.State != "Stable" || len(g.Members) != 1 {
			return fmt.Errorf("group %s with %d members", g.State, len(g.Members))
		}
		m := g.Members[0]
		if m.ClientID != "describe-me" || m.ClientHost != "/127.0.0.1" {
			return fmt.Errorf("member client id %q host %q", m.ClientID, m.ClientHost)
		}
		return nil
	})
}
