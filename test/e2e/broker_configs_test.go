package e2e

// Dynamic broker configs through kadm: IncrementalAlterConfigs
// (AlterBrokerConfigs) and AlterConfigs (AlterBrokerConfigsState) on the
// cluster-default broker resource, their effect on new topics, and that they
// survive a restart.

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func brokerConfigsDescribe(t *testing.T, adm *kadm.Client) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]kadm.Config{}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe broker configs: %v", rc.Err)
		}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
	}
	return out
}

func TestBrokerConfigsDynamic(t *testing.T) {
	ctx := context.Background()
	b := StartBroker(t)
	adm := clientsAdmin(t, b)

	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "num.partitions", Value: kadm.StringPtr("4")},
		{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("120000")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resps {
		if r.Err != nil {
			t.Fatalf("alter broker configs: %v (%s)", r.Err, r.ErrMessage)
		}
	}
	// A static key is refused with INVALID_CONFIG.
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.dirs", Value: kadm.StringPtr("/x")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 1 || !errors.Is(resps[0].Err, kerr.InvalidConfig) {
		t.Fatalf("static key: %+v", resps)
	}

	check := func(b *Broker, topic string) {
		t.Helper()
		adm := clientsAdmin(t, b)
		if _, err := adm.CreateTopic(ctx, -1, -1, nil, topic); err != nil {
			t.Fatal(err)
		}
		if n := adminTopicPartitions(t, b, topic); n != 4 {
			t.Fatalf("%s has %d partitions, want 4 (dynamic num.partitions)", topic, n)
		}
		adminWantConfig(t, adminTopicConfigs(t, adm, topic), "retention.ms", "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		c := brokerConfigsDescribe(t, adm)["num.partitions"]
		if c.MaybeValue() != "4" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("broker num.partitions = %q (source %v)", c.MaybeValue(), c.Source)
		}
	}
	check(b, "dyn-a")

	b.Stop()
	b = StartBrokerIn(t, b.DataDir)
	check(b, "dyn-b")

	// AlterConfigs replaces the whole dynamic set: log.retention.ms returns
	// to its static value.
	adm = clientsAdmin(t, b)
	resps, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kadm.StringPtr("4")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resps {
		if r.Err != nil {
			t.Fatalf("alter broker configs state: %v (%s)", r.Err, r.ErrMessage)
		}
	}
	if c := brokerConfigsDescribe(t, adm)["log.retention.ms"]; c.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("log.retention.ms still dynamic after AlterConfigs: %+v", c)
	}
}
