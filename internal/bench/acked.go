package bench

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// ackCounts counts acknowledged records per partition (--acked-output), so a
// durability check can compare each partition's high watermark after a
// restart or a crash with what the broker acknowledged there: every
// acknowledged record must still be below it.
type ackCounts struct {
	mu sync.Mutex
	n  map[ackKey]int64
}

type ackKey struct {
	topic     string
	partition int32
}

func (a *ackCounts) add(topic string, partition int32) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.n[ackKey{topic, partition}]++
	a.mu.Unlock()
}

// write writes "topic partition count" lines, sorted, to path.
func (a *ackCounts) write(path string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]ackKey, 0, len(a.n))
	for k := range a.n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y ackKey) int {
		if c := strings.Compare(x.topic, y.topic); c != 0 {
			return c
		}
		return int(x.partition - y.partition)
	})
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: acked output: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, k := range keys {
		fmt.Fprintf(w, "%s %d %d\n", k.topic, k.partition, a.n[k])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench: acked output: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: acked output: %w", err)
	}
	return nil
}
