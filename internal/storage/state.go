package storage

// Failed reports whether a write or fsync failed: the log then refuses all
// writes and the broker reports KAFKA_STORAGE_ERROR for it. It takes no
// lock: Metadata asks it for every partition, and must not queue behind
// appends.
func (l *Log) Failed() bool { return l.isFailed.Load() }
