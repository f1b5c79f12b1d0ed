package storage

// Failed reports whether a write or fsync failed: the log then refuses all
// writes and the broker reports KAFKA_STORAGE_ERROR for it. It takes no
// lock: Metadata asks it for every partition, and must not queue behind
// appends.
func (l *Log) Failed() bool { return l.isFailed.Load() }

// OpenFiles is the number of file descriptors the log holds: one per
// segment (index files are read into memory and closed).
func (l *Log) OpenFiles() int { return len(*l.segs.Load()) }
