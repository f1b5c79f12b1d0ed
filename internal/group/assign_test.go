package group

import (
	"fmt"
	"testing"
)

func members(n int, topics ...string) []assignMember {
	var out []assignMember
	for i := range n {
		out = append(out, assignMember{id: fmt.Sprintf("m%02d", i), topics: topics})
	}
	return out
}

// checkComplete: every partition assigned exactly once.
func checkComplete(t *testing.T, a assignment, parts map[string]int32) {
	t.Helper()
	seen := map[TP]string{}
	for id, tps := range a {
		for tp := range tps {
			if o, ok := seen[tp]; ok {
				t.Fatalf("%v assigned to %s and %s", tp, o, id)
			}
			seen[tp] = id
		}
	}
	for topic, n := range parts {
		for p := range n {
			if _, ok := seen[TP{topic, p}]; !ok {
				t.Fatalf("%s/%d unassigned", topic, p)
			}
		}
	}
}

func TestUniformBalance(t *testing.T) {
	parts := map[string]int32{"a": 7, "b": 5}
	for n := 1; n <= 13; n++ {
		a := assign(AssignorUniform, members(n, "a", "b"), parts, nil)
		checkComplete(t, a, parts)
		lo, hi := 1<<30, 0
		for _, tps := range a {
			lo, hi = min(lo, len(tps)), max(hi, len(tps))
		}
		if hi-lo > 1 {
			t.Fatalf("%d members: sizes from %d to %d", n, lo, hi)
		}
	}
}

func TestUniformSticky(t *testing.T) {
	parts := map[string]int32{"a": 12}
	prev := assign(AssignorUniform, members(3, "a"), parts, nil)
	// A fourth member joins: each old member gives up exactly one partition.
	next := assign(AssignorUniform, members(4, "a"), parts, prev)
	checkComplete(t, next, parts)
	moved := 0
	for id, tps := range prev {
		for tp := range tps {
			if !next[id][tp] {
				moved++
			}
		}
	}
	if moved != 3 || len(next["m03"]) != 3 {
		t.Fatalf("moved %d partitions, new member has %d; want 3 and 3", moved, len(next["m03"]))
	}
	// m01 leaves: only its partitions move.
	ms := members(4, "a")
	ms = append(ms[:1], ms[2:]...)
	after := assign(AssignorUniform, ms, parts, next)
	checkComplete(t, after, parts)
	for _, id := range []string{"m00", "m02", "m03"} {
		for tp := range next[id] {
			if !after[id][tp] {
				t.Fatalf("%s lost %v although it did not need to", id, tp)
			}
		}
	}
}

func TestUniformHeterogeneous(t *testing.T) {
	parts := map[string]int32{"a": 4, "b": 4}
	ms := []assignMember{{id: "x", topics: []string{"a"}}, {id: "y", topics: []string{"a", "b"}}}
	a := assign(AssignorUniform, ms, parts, nil)
	checkComplete(t, a, parts)
	for tp := range a["x"] {
		if tp.Topic != "a" {
			t.Fatalf("x got %v, not subscribed", tp)
		}
	}
}

func TestRangeContiguous(t *testing.T) {
	parts := map[string]int32{"a": 7, "b": 2}
	a := assign(AssignorRange, members(3, "a", "b"), parts, nil)
	checkComplete(t, a, parts)
	want := map[string][]int32{"m00": {0, 1, 2}, "m01": {3, 4}, "m02": {5, 6}}
	for id, ps := range want {
		for _, p := range ps {
			if !a[id][TP{"a", p}] {
				t.Fatalf("%s lacks a/%d: %v", id, p, a[id])
			}
		}
	}
	if !a["m00"][TP{"b", 0}] || !a["m01"][TP{"b", 1}] || len(a["m02"]) != 2 {
		t.Fatalf("topic b not ranged by member order: %v", a)
	}
}
