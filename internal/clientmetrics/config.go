package clientmetrics

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Subscription config keys (Kafka's ClientMetricsConfigs).
const (
	KeyMetrics  = "metrics"
	KeyInterval = "interval.ms"
	KeyMatch    = "match"
)

// Match selector names (the "name=regex" items of the match config).
const (
	MatchInstanceID      = "client_instance_id"
	MatchClientID        = "client_id"
	MatchSoftwareName    = "client_software_name"
	MatchSoftwareVersion = "client_software_version"
	MatchSourceAddress   = "client_source_address"
	MatchSourcePort      = "client_source_port"
)

// Push interval bounds and default, as Kafka validates them.
const (
	DefaultIntervalMs = 5 * 60 * 1000
	MinIntervalMs     = 100
	MaxIntervalMs     = 3600000
)

// AllMetrics in the metrics config subscribes to every metric.
const AllMetrics = "*"

// Config describes one subscription config key (for DescribeConfigs
// documentation and types).
type Config struct {
	Name, Doc string
	List      bool // a comma-separated list (APPEND/SUBTRACT apply)
}

// Configs are the keys a CLIENT_METRICS resource accepts.
var Configs = []Config{
	{Name: KeyMetrics, List: true, Doc: "Metric name prefixes the matching clients push; * for all metrics, empty for none."},
	{Name: KeyInterval, Doc: "Push interval in milliseconds (100 to 3600000; default 300000); a client matching several subscriptions uses the lowest."},
	{Name: KeyMatch, List: true, Doc: "Client selectors, each name=regex (client_instance_id, client_id, client_software_name, client_software_version, client_source_address, client_source_port); all must match the whole value; empty matches every client."},
}

// ConfigDef returns the definition of key.
func ConfigDef(key string) (Config, bool) {
	for _, c := range Configs {
		if c.Name == key {
			return c, true
		}
	}
	return Config{}, false
}

// Validation errors. Kafka answers ErrInvalidRequest with INVALID_REQUEST
// (an empty name, an unknown key, an interval out of bounds) and
// ErrInvalidConfig with INVALID_CONFIG (a value that does not parse, a bad
// match pattern).
var (
	ErrInvalidRequest = errors.New("clientmetrics: invalid request")
	ErrInvalidConfig  = errors.New("clientmetrics: invalid config")
)

// Subscription is one parsed CLIENT_METRICS resource.
type Subscription struct {
	Name       string
	Metrics    []string // prefixes; AllMetrics for all
	IntervalMs int32
	Match      map[string]*regexp.Regexp // selector -> anchored pattern
}

// Parse validates a subscription's configs as Kafka does and returns it.
// Empty configs are valid (they delete the subscription).
func Parse(name string, configs map[string]string) (*Subscription, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: subscription name can't be empty", ErrInvalidRequest)
	}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := ConfigDef(k); !ok {
			return nil, fmt.Errorf("%w: unknown client metrics configuration: %s", ErrInvalidRequest, k)
		}
	}
	s := &Subscription{Name: name, IntervalMs: DefaultIntervalMs, Metrics: splitList(configs[KeyMetrics])}
	if v, ok := configs[KeyInterval]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid value %s for configuration %s: not a number of type INT", ErrInvalidConfig, v, KeyInterval)
		}
		if n < MinIntervalMs || n > MaxIntervalMs {
			return nil, fmt.Errorf("%w: invalid value %d for %s, interval must be between %d and %d (1 hour)", ErrInvalidRequest, n, KeyInterval, MinIntervalMs, MaxIntervalMs)
		}
		s.IntervalMs = int32(n)
	}
	match, err := parseMatch(splitList(configs[KeyMatch]))
	if err != nil {
		return nil, err
	}
	s.Match = match
	return s, nil
}

// parseMatch parses "name=regex" selectors. Like Kafka, an item must have
// exactly one '=' (Java's split drops a trailing empty part, so "name=" is
// invalid too), a known name and a regex that compiles; a name given twice
// keeps the last. Go's RE2 syntax differs from Java's in the rare
// constructs RE2 lacks (backreferences, lookaround): those are refused.
func parseMatch(items []string) (map[string]*regexp.Regexp, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make(map[string]*regexp.Regexp, len(items))
	for _, it := range items {
		parts := strings.Split(it, "=")
		for len(parts) > 0 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		if len(parts) != 2 {
			return nil, fmt.Errorf("%w: illegal client matching pattern: %s", ErrInvalidConfig, it)
		}
		name, pat := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		switch name {
		case MatchInstanceID, MatchClientID, MatchSoftwareName, MatchSoftwareVersion, MatchSourceAddress, MatchSourcePort:
		default:
			return nil, fmt.Errorf("%w: illegal client matching pattern: %s", ErrInvalidConfig, it)
		}
		re, err := regexp.Compile(`^(?:` + pat + `)$`)
		if err != nil {
			return nil, fmt.Errorf("%w: illegal client matching pattern: %s", ErrInvalidConfig, it)
		}
		out[name] = re
	}
	return out, nil
}

// splitList is Kafka's LIST parsing: comma-separated, items trimmed, an
// empty (or blank) value is the empty list.
func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// Matches reports whether a client with these attributes (keyed by the
// Match* names) is selected. Every selector must match the whole value; a
// missing attribute never matches; no selectors match every client.
func (s *Subscription) Matches(attrs map[string]string) bool {
	for name, re := range s.Match {
		v, ok := attrs[name]
		if !ok || !re.MatchString(v) {
			return false
		}
	}
	return true
}
