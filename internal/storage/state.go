package storage

// Failed reports whether a write or fsync failed: the log then refuses all
// writes and the broker reports KAFKA_STORAGE_ERROR for it.
func (l *Log) Failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed != nil
}
