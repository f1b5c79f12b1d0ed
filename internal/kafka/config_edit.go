package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// configEdit is how AlterConfigs and IncrementalAlterConfigs change one kind
// of config resource (topic, broker, client-metrics subscription): the
// request-shape rules (a key given twice, SET without a value, unknown ops:
// INVALID_REQUEST) live here once; what differs per kind is which keys may be
// set and how a list key is edited.
type configEdit struct {
	// check refuses a key that cannot be changed (nil: every key).
	check func(name string) error
	// list returns the value an APPEND or SUBTRACT of name edits (the set
	// value or the default) and whether name is a list config.
	list func(cur map[string]string, name string) (base string, isList bool)
	// notList is the error for APPEND / SUBTRACT on a key that is not a
	// list (Kafka's wording differs per resource).
	notList func(op kmsg.IncrementalAlterConfigOp, name string) error
	// dropEmpty removes a list edited down to nothing instead of keeping
	// the empty value.
	dropEmpty bool
}

func listOpNotAllowed(op kmsg.IncrementalAlterConfigOp, name string) error {
	return fmt.Errorf("%s applies only to list configs; %s is not a list", op, name)
}

// admit checks one key of a request: given twice is INVALID_REQUEST, then
// the kind's own check.
func (e configEdit) admit(seen map[string]bool, name string) error {
	if seen[name] {
		return fmt.Errorf("%w: config %q given twice", errInvalidConfigRequest, name)
	}
	seen[name] = true
	if e.check != nil {
		return e.check(name)
	}
	return nil
}

// replace is AlterConfigs' change: the listed configs (null values left
// out) replace the current ones as a whole.
func (e configEdit) replace(cfgs []kmsg.AlterConfigsRequestResourceConfig) func(map[string]string) (map[string]string, error) {
	return func(map[string]string) (map[string]string, error) {
		next := map[string]string{}
		seen := map[string]bool{}
		for _, c := range cfgs {
			if err := e.admit(seen, c.Name); err != nil {
				return nil, err
			}
			if c.Value != nil {
				next[c.Name] = *c.Value
			}
		}
		return next, nil
	}
}

// incremental is IncrementalAlterConfigs' change: SET, DELETE, and APPEND /
// SUBTRACT on list keys, applied to cur (which it may modify).
func (e configEdit) incremental(ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) func(map[string]string) (map[string]string, error) {
	return func(cur map[string]string) (map[string]string, error) {
		if cur == nil {
			cur = map[string]string{}
		}
		seen := map[string]bool{}
		for _, c := range ops {
			if err := e.admit(seen, c.Name); err != nil {
				return nil, err
			}
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if c.Value == nil {
					return nil, fmt.Errorf("%w: SET of %q without a value", errInvalidConfigRequest, c.Name)
				}
				cur[c.Name] = *c.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				delete(cur, c.Name)
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				base, isList := "", false
				if e.list != nil {
					base, isList = e.list(cur, c.Name)
				}
				if !isList {
					return nil, e.notList(c.Op, c.Name)
				}
				v := editList(base, derefOr(c.Value), c.Op == kmsg.IncrementalAlterConfigOpAppend)
				if v == "" && e.dropEmpty {
					delete(cur, c.Name)
				} else {
					cur[c.Name] = v
				}
			default:
				return nil, fmt.Errorf("%w: unknown op %d for %q", errInvalidConfigRequest, c.Op, c.Name)
			}
		}
		return cur, nil
	}
}
