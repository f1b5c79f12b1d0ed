package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/group"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterBroker sends AlterConfigs (replace) for the broker resource name.
func alterBroker(f *brokerFixture, name string, validateOnly bool, kv ...string) kmsg.AlterConfigsResponseResource {
	f.t.Helper()
	req := alterReq(name, validateOnly, kv...)
	req.Resources[0].ResourceType = kmsg.ConfigResourceTypeBroker
	return f.do(req, 2).(*kmsg.AlterConfigsResponse).Resources[0]
}

// alterBrokerIncr sends one IncrementalAlterConfigs op for the broker.
func alterBrokerIncr(f *brokerFixture, name string, op kmsg.IncrementalAlterConfigOp, key, value string, validateOnly bool) kmsg.IncrementalAlterConfigsResponseResource {
	f.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = key, op, kmsg.StringPtr(value)
	rr.Configs = append(rr.Configs, c)
	req.Resources = append(req.Resources, rr)
	return f.do(req, 1).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
}

func describeBroker(f *brokerFixture) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	f.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	req.Resources = append(req.Resources, rr)
	res := f.do(req, 4).(*kmsg.DescribeConfigsResponse).Resources[0]
	wantCode(f.t, "describe broker", res.ErrorCode, nil)
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		out[c.Name] = c
	}
	return out
}

// metadataAuto asks for topic with auto-creation allowed.
func metadataAuto(f *brokerFixture, topic string) kmsg.MetadataResponseTopic {
	f.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	req.AllowAutoTopicCreation = true
	return f.do(req, 12).(*kmsg.MetadataResponse).Topics[0]
}

func TestDynamicBrokerConfigs(t *testing.T) {
	f := newFixture(t)

	// num.partitions: auto-created topics get the new count.
	wantCode(t, "num.partitions", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "num.partitions", "5", false).ErrorCode, nil)
	if mt := metadataAuto(f, "auto5"); mt.ErrorCode != 0 || len(mt.Partitions) != 5 {
		t.Fatalf("auto-created topic: code %d, %d partitions, want 5", mt.ErrorCode, len(mt.Partitions))
	}
	c := describeBroker(f)["num.partitions"]
	if *c.Value != "5" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig || c.ReadOnly || len(c.ConfigSynonyms) != 2 || *c.ConfigSynonyms[1].Value != "3" {
		t.Fatalf("num.partitions described as %+v", c)
	}

	// log.retention.ms via the node id: the topic default follows.
	wantCode(t, "log.retention.ms", alterBrokerIncr(f, "1", kmsg.IncrementalAlterConfigOpSet, "log.retention.ms", "60000", false).ErrorCode, nil)
	if c := describeTopic(f, "auto5")["retention.ms"]; *c.Value != "60000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("topic retention.ms = %s (source %v)", *c.Value, c.Source)
	}

	// auto.create.topics.enable=false: Metadata no longer creates.
	wantCode(t, "auto.create", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "auto.create.topics.enable", "false", false).ErrorCode, nil)
	if mt := metadataAuto(f, "nocreate"); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata with auto-create disabled: code %d", mt.ErrorCode)
	}

	// Bad values and static keys: INVALID_CONFIG naming the key; nothing changes.
	for _, kv := range [][2]string{
		{"num.partitions", "0"}, {"num.partitions", "x"}, {"auto.create.topics.enable", "yes"},
		{"log.segment.bytes", "10"}, {"log.roll.ms", "0"}, {"log.retention.bytes", "-2"},
		{"message.max.bytes", "63"}, {"log.dirs", "/tmp"}, {"offsets.retention.minutes", "0"}, {"no.such.key", "1"},
	} {
		r := alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, kv[0], kv[1], false)
		wantCode(t, kv[0]+"="+kv[1], r.ErrorCode, kerr.InvalidConfig)
		if r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, kv[0]) {
			t.Errorf("%s=%s: message %v does not name the key", kv[0], kv[1], r.ErrorMessage)
		}
	}
	if r := alterBroker(f, "", false, "log.dirs", "/tmp"); r.ErrorCode != kerr.InvalidConfig.Code || !strings.Contains(*r.ErrorMessage, "static") {
		t.Errorf("AlterConfigs static key: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	wantCode(t, "append", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpAppend, "num.partitions", "1", false).ErrorCode, kerr.InvalidConfig)
	wantCode(t, "other broker", alterBrokerIncr(f, "7", kmsg.IncrementalAlterConfigOpSet, "num.partitions", "2", false).ErrorCode, kerr.InvalidRequest)

	// validate_only changes nothing.
	wantCode(t, "validate only", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "num.partitions", "9", true).ErrorCode, nil)
	wantCode(t, "validate only replace", alterBroker(f, "", true, "num.partitions", "8").ErrorCode, nil)
	if v := *describeBroker(f)["num.partitions"].Value; v != "5" {
		t.Fatalf("validate_only changed num.partitions to %s", v)
	}

	// Survives a restart.
	f = f.reopen(false)
	bc := describeBroker(f)
	if *bc["num.partitions"].Value != "5" || *bc["log.retention.ms"].Value != "60000" || *bc["auto.create.topics.enable"].Value != "false" {
		t.Fatalf("after restart: num.partitions %s, log.retention.ms %s, auto.create %s",
			*bc["num.partitions"].Value, *bc["log.retention.ms"].Value, *bc["auto.create.topics.enable"].Value)
	}
	if mt := metadataAuto(f, "nocreate"); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata after restart: code %d", mt.ErrorCode)
	}

	// AlterConfigs replaces: keys not given return to their static values.
	wantCode(t, "replace", alterBroker(f, "", false, "num.partitions", "2").ErrorCode, nil)
	bc = describeBroker(f)
	if c := bc["num.partitions"]; *c.Value != "2" {
		t.Fatalf("num.partitions after replace: %s", *c.Value)
	}
	if c := bc["log.retention.ms"]; c.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("log.retention.ms still dynamic after replace: %+v", c)
	}
	if mt := metadataAuto(f, "auto2"); mt.ErrorCode != 0 || len(mt.Partitions) != 2 {
		t.Fatalf("auto-create after replace: code %d, %d partitions", mt.ErrorCode, len(mt.Partitions))
	}
	if c := describeTopic(f, "auto2")["retention.ms"]; c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("topic retention.ms after replace: %s (source %v)", *c.Value, c.Source)
	}
	// DELETE returns to the static value.
	wantCode(t, "delete", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpDelete, "num.partitions", "", false).ErrorCode, nil)
	if c := describeBroker(f)["num.partitions"]; *c.Value != "3" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("num.partitions after delete: %+v", c)
	}
}

// TestDynamicOffsetsRetention: offsets.retention.minutes set at runtime
// reaches the group coordinator at once and again after a restart.
func TestDynamicOffsetsRetention(t *testing.T) {
	dir := t.TempDir()
	f := openFixture(t, dir, func(o *Options) { o.OffsetsRetention = 7 * 24 * time.Hour })
	install := func(f *brokerFixture) *group.Coordinator {
		return f.openGroups(group.Options{OffsetsRetention: 7 * 24 * time.Hour})
	}
	g := install(f)
	if got := g.OffsetsRetention(); got != 7*24*time.Hour {
		t.Fatalf("initial retention %v", got)
	}
	wantCode(t, "set", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "offsets.retention.minutes", "5", false).ErrorCode, nil)
	if got := g.OffsetsRetention(); got != 5*time.Minute {
		t.Fatalf("retention after the change %v, want 5m", got)
	}
	g.Close()
	f2 := f.reopen(false)
	if got := install(f2).OffsetsRetention(); got != 5*time.Minute {
		t.Fatalf("retention after restart %v, want 5m", got)
	}
}

// TestDynamicInitialRebalanceDelay: group.initial.rebalance.delay.ms set at
// runtime reaches the group coordinator at once and again after a restart;
// deleting it returns to the static value.
func TestDynamicInitialRebalanceDelay(t *testing.T) {
	dir := t.TempDir()
	f := openFixture(t, dir, func(o *Options) { o.InitialRebalanceDelay = 3 * time.Second })
	install := func(f *brokerFixture) *group.Coordinator {
		return f.openGroups(group.Options{})
	}
	g := install(f)
	if got := g.InitialRebalanceDelay(); got != 3*time.Second {
		t.Fatalf("static delay %v, want 3s", got)
	}
	if c := describeBroker(f)["group.initial.rebalance.delay.ms"]; c.Value == nil || *c.Value != "3000" || c.ReadOnly {
		t.Fatalf("described as %+v", c)
	}
	wantCode(t, "negative", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "group.initial.rebalance.delay.ms", "-1", false).ErrorCode, kerr.InvalidConfig)
	wantCode(t, "set", alterBrokerIncr(f, "", kmsg.IncrementalAlterConfigOpSet, "group.initial.rebalance.delay.ms", "0", false).ErrorCode, nil)
	if got := g.InitialRebalanceDelay(); got != 0 {
		t.Fatalf("delay after the change %v, want 0", got)
	}
	g.Close()
	f2 := f.reopen(false)
	g = install(f2)
	if got := g.InitialRebalanceDelay(); got != 0 {
		t.Fatalf("delay after restart %v, want 0", got)
	}
	wantCode(t, "delete", alterBrokerIncr(f2, "", kmsg.IncrementalAlterConfigOpDelete, "group.initial.rebalance.delay.ms", "", false).ErrorCode, nil)
	if got := g.InitialRebalanceDelay(); got != 3*time.Second {
		t.Fatalf("delay after delete %v, want the static 3s", got)
	}
}
