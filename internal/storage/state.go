package storage

import "os"

// Failed reports whether a write or fsync failed: the log then refuses all
// writes and the broker reports KAFKA_STORAGE_ERROR for it. It takes no
// lock: Metadata asks it for every partition, and must not queue behind
// appends.
func (l *Log) Failed() bool { return l.isFailed.Load() }

// OpenFiles is the number of file descriptors the log holds: one per
// segment (index files are read into memory and closed), none while
// released (ReleaseFiles).
func (l *Log) OpenFiles() int {
	if l.released.Load() {
		return 0
	}
	return len(*l.segs.Load())
}

// SegmentBytes lists dir without opening the log: how many segment files
// it holds and their total size (a closed partition's size for metrics,
// and whether there is anything to retain or clean at all).
func SegmentBytes(dir string) (segments int, bytes int64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := parseSegmentName(e.Name(), logSuffix); !ok {
			continue
		}
		segments++
		if fi, err := e.Info(); err == nil {
			bytes += fi.Size()
		}
	}
	return segments, bytes
}
