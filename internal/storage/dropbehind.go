package storage

// Drop-behind (Options.DropBehind). A log written at hundreds of MB/s grows
// the page cache by as much, and on a VM whose balloon driver hands free
// memory back to the host (free page reporting) every page the cache grows
// into is first touched through a host fault: the kernel's copy of each
// batch into the page cache then costs up to ten times what it costs into a
// page that is reused (bench/RESULTS.md §3). Dropping data from the cache
// once it is fsynced and far enough behind the end lets the kernel reuse
// those pages for the next writes. Readers of dropped data (consumers more
// than DropBehind behind) read it from the disk instead.

// dropMinStep: the cache is dropped at least this much at a time.
const dropMinStep = 1 << 20

// dropBehind drops s's data below durable-DropBehind from the page cache;
// durable is a size of s that an fsync covered. Called with syncMu held.
func (l *Log) dropBehind(s *segment, durable int64) {
	keep := l.opts.DropBehind
	if keep <= 0 {
		return
	}
	to := durable - keep
	if to-s.dropped < dropMinStep {
		return
	}
	// Advice only: a failure changes nothing but the cache.
	_ = fadviseDontNeed(s.f.Fd(), s.dropped, to-s.dropped)
	s.dropped = to
}
