package metadata

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ConfigType is Kafka's DescribeConfigs config type.
type ConfigType int8

// Kafka's config types (DescribeConfigs v3+).
const (
	TypeBoolean ConfigType = 1
	TypeString  ConfigType = 2
	TypeInt     ConfigType = 3
	TypeShort   ConfigType = 4
	TypeLong    ConfigType = 5
	TypeDouble  ConfigType = 6
	TypeList    ConfigType = 7
)

// ConfigDef is one topic-level config Chronik knows.
type ConfigDef struct {
	Name  string
	Type  ConfigType
	Doc   string
	check func(v string) error
}

// Validate checks v against the definition.
func (d *ConfigDef) Validate(v string) error {
	if d.check != nil {
		if err := d.check(v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %v", v, d.Name, err)
		}
	}
	return nil
}

func longAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not a long")
		}
		if n < min {
			return fmt.Errorf("must be >= %d", min)
		}
		return nil
	}
}

func intRange(min, max int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("not an int")
		}
		if n < min || n > max {
			return fmt.Errorf("must be between %d and %d", min, max)
		}
		return nil
	}
}

func oneOf(valid ...string) func(string) error {
	return func(v string) error {
		for _, ok := range valid {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("valid values: %s", strings.Join(valid, ", "))
	}
}

func listOf(valid ...string) func(string) error {
	return func(v string) error {
		for _, part := range strings.Split(v, ",") {
			if err := oneOf(valid...)(strings.TrimSpace(part)); err != nil {
				return err
			}
		}
		return nil
	}
}

func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("must be a number between 0 and 1")
	}
	return nil
}

// TopicConfigDefs lists the topic configs accepted by CreateTopics and shown
// by DescribeConfigs. Defaults come from the broker (see TopicDefaults).
var TopicConfigDefs = []ConfigDef{
	{"cleanup.policy", TypeList, "delete (time and size retention remove old segments) and/or compact (the log cleaner keeps the latest record of each key)", listOf("delete", "compact")},
	{"compression.type", TypeString, "codec for stored batches; producer keeps what the client sent", oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"delete.retention.ms", TypeLong, "how long tombstones are kept in compacted topics", longAtLeast(0)},
	{"max.message.bytes", TypeInt, "largest record batch accepted, in bytes", intRange(0, 1<<31-1)},
	{"message.timestamp.type", TypeString, "CreateTime keeps the producer's timestamp, LogAppendTime stamps broker time", oneOf("CreateTime", "LogAppendTime")},
	{"message.timestamp.before.max.ms", TypeLong, "reject records whose timestamp is older than this", longAtLeast(0)},
	{"message.timestamp.after.max.ms", TypeLong, "reject records whose timestamp is further in the future than this", longAtLeast(0)},
	{"min.cleanable.dirty.ratio", TypeDouble, "dirty share of a log that triggers compaction", ratio},
	{"min.compaction.lag.ms", TypeLong, "records younger than this are not compacted", longAtLeast(0)},
	{"min.insync.replicas", TypeInt, "replicas that must acknowledge acks=all (1 on a single node)", intRange(1, 1<<31-1)},
	{"retention.bytes", TypeLong, "oldest closed segments are deleted while the partition stays at least this large (-1 unlimited)", longAtLeast(-1)},
	{"retention.ms", TypeLong, "closed segments whose newest record is older than this many ms are deleted (-1 unlimited)", longAtLeast(-1)},
	{"segment.bytes", TypeInt, "roll the active segment at this size", intRange(14, 1<<31-1)},
	{"segment.ms", TypeLong, "roll the active segment at this age", longAtLeast(1)},
}

// TopicConfigDef returns the definition of name.
func TopicConfigDef(name string) (*ConfigDef, bool) {
	for i := range TopicConfigDefs {
		if TopicConfigDefs[i].Name == name {
			return &TopicConfigDefs[i], true
		}
	}
	return nil, false
}

// BrokerDefaults are the broker-level values topic configs fall back to.
type BrokerDefaults struct {
	MessageMaxBytes int32
	SegmentBytes    int64
	SegmentMs       int64
	RetentionMs     int64
	RetentionBytes  int64
}

// TopicDefaults returns each topic config's default given the broker settings.
func TopicDefaults(b BrokerDefaults) map[string]string {
	return map[string]string{
		"cleanup.policy":                  "delete",
		"compression.type":                "producer",
		"delete.retention.ms":             "86400000",
		"max.message.bytes":               strconv.FormatInt(int64(b.MessageMaxBytes), 10),
		"message.timestamp.type":          "CreateTime",
		"message.timestamp.before.max.ms": "9223372036854775807",
		"message.timestamp.after.max.ms":  "3600000",
		"min.cleanable.dirty.ratio":       "0.5",
		"min.compaction.lag.ms":           "0",
		"min.insync.replicas":             "1",
		"retention.bytes":                 strconv.FormatInt(b.RetentionBytes, 10),
		"retention.ms":                    strconv.FormatInt(b.RetentionMs, 10),
		"segment.bytes":                   strconv.FormatInt(b.SegmentBytes, 10),
		"segment.ms":                      strconv.FormatInt(b.SegmentMs, 10),
	}
}

// ValidateTopicConfigs checks every key is known and every value valid.
func ValidateTopicConfigs(cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d, ok := TopicConfigDef(k)
		if !ok {
			return fmt.Errorf("unknown topic config %q", k)
		}
		if err := d.Validate(cfg[k]); err != nil {
			return err
		}
	}
	return nil
}

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("must be true or false")
	}
	return nil
}

// BrokerConfigDefs lists the broker configs that can be changed at runtime
// (AlterConfigs / IncrementalAlterConfigs on a BROKER resource). Ranges match
// the corresponding flags (config.Validate).
var BrokerConfigDefs = []ConfigDef{
	{"auto.create.topics.enable", TypeBoolean, "create unknown topics on Metadata requests", boolean},
	{"num.partitions", TypeInt, "partitions of auto-created topics and of CreateTopics without a count", intRange(1, 100000)},
	{"message.max.bytes", TypeInt, "default max.message.bytes of topics", intRange(64, 1<<31-1)},
	{"log.segment.bytes", TypeInt, "default segment.bytes of topics", intRange(14, 1<<31-1)},
	{"log.roll.ms", TypeLong, "default segment.ms of topics", longAtLeast(1)},
	{"log.retention.ms", TypeLong, "default retention.ms of topics (-1 unlimited)", longAtLeast(-1)},
	{"log.retention.bytes", TypeLong, "default retention.bytes of topics (-1 unlimited)", longAtLeast(-1)},
	{"offsets.retention.minutes", TypeInt, "committed offsets of groups without members expire after this", intRange(1, 1<<31-1)},
	{"group.initial.rebalance.delay.ms", TypeInt, "the first rebalance of an empty classic group waits this long for more members (0: none)", intRange(0, 1<<31-1)},
}

// BrokerConfigDef returns the definition of a dynamic broker config.
func BrokerConfigDef(name string) (*ConfigDef, bool) {
	for i := range BrokerConfigDefs {
		if BrokerConfigDefs[i].Name == name {
			return &BrokerConfigDefs[i], true
		}
	}
	return nil, false
}

// ValidateBrokerConfigs checks every key is a dynamic broker config and every
// value valid.
func ValidateBrokerConfigs(cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d, ok := BrokerConfigDef(k)
		if !ok {
			return fmt.Errorf("broker config %q is not dynamic", k)
		}
		if err := d.Validate(cfg[k]); err != nil {
			return err
		}
	}
	return nil
}

// Apply returns b with the dynamic broker configs in cfg (assumed valid)
// applied.
func (b BrokerDefaults) Apply(cfg map[string]string) BrokerDefaults {
	n := func(k string) (int64, bool) {
		v, ok := cfg[k]
		if !ok {
			return 0, false
		}
		x, err := strconv.ParseInt(v, 10, 64)
		return x, err == nil
	}
	if x, ok := n("message.max.bytes"); ok {
		b.MessageMaxBytes = int32(x)
	}
	if x, ok := n("log.segment.bytes"); ok {
		b.SegmentBytes = x
	}
	if x, ok := n("log.roll.ms"); ok {
		b.SegmentMs = x
	}
	if x, ok := n("log.retention.ms"); ok {
		b.RetentionMs = x
	}
	if x, ok := n("log.retention.bytes"); ok {
		b.RetentionBytes = x
	}
	return b
}
