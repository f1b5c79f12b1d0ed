package txn

// PendingOffsets returns the partitions of group gid that have transactional
// offsets staged by an ongoing or committing transaction (KIP-447): an
// OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for them,
// so a consumer taking over a partition waits for the previous owner's
// transaction to finish instead of reading the offset it is replacing.
func (c *Coordinator) PendingOffsets(gid string) map[TP]bool {
	c.mu.Lock()
	entries := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	var out map[TP]bool
	for _, e := range entries { // entry.mu before Coordinator.mu: not nested
		e.mu.Lock()
		if e.Status == Ongoing || e.Status == PrepareCommit {
			for _, o := range e.Offsets[gid] {
				if out == nil {
					out = map[TP]bool{}
				}
				out[o.TP] = true
			}
		}
		e.mu.Unlock()
	}
	return out
}
