package kafka

// Behavior:
//
//   - One log dir, the data dir (absolute path), holding every partition.
//     Size is the partition's on-disk log size (segments; indexes are not
//     counted, as in Kafka); OffsetLag is 0 and IsFuture false (there are no
//     replica moves between dirs).
//   - A null topic list means every partition; partitions that do not exist
//     are left out of the answer, as Kafka does.
//   - TotalBytes / UsableBytes (v4+) come from statfs on the data dir; if
//     that fails they stay -1 (Kafka's "unknown").
//
// Version notes:
//   - v1 is the minimum (KIP-896); v3 adds the top-level ErrorCode, v4 the
//     byte totals, v5 IsCordoned (always false).

import (
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeLogDirs(b *Broker, r *kmsg.DescribeLogDirsRequest) (*kmsg.DescribeLogDirsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.opts.DataDir
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.opts.DataDir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
		dir.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	add := func(name string, parts []int32) {
		ts := b.topic(name)
		if ts == nil {
			return
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = name
		for _, i := range parts {
			if i < 0 || int(i) >= len(ts.parts) || !b.hosts(ts.meta, i) {
				continue // only partitions with files in this broker's log dir (led or followed)
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = i
			dp.Size = ts.parts[i].Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	if r.Topics == nil {
		for _, t := range b.meta.Image().SortedTopics() {
			all := make([]int32, t.Partitions)
			for i := range all {
				all[i] = int32(i)
			}
			add(t.Name, all)
		}
	} else {
		for _, rt := range r.Topics {
			add(rt.Topic, rt.Partitions)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
