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

// Early writeback. The group committer's fsync of a round waits for the
// round's bytes to reach the disk; with buffered writes the kernel starts
// that I/O only when the fsync asks for it (or its flusher wakes, up to 30 s
// later). A log that has written at least kickStep since the last kick starts
// writeback of those bytes at once (sync_file_range WRITE, asynchronous), so
// by the time the round's fsync runs most of its I/O is already in flight,
// and the disk works while the next round's requests arrive. Measured in
// bench/RESULTS.md §3: 1 KiB records, 1 MiB batches, 1.13-1.40 GB/s without,
// 1.46-1.53 GB/s with (8 senders, alternating). Advice only: durability still
// comes from the fsync alone.

// kickWriteback is startWriteback; tests replace it to see the calls.
var kickWriteback = startWriteback

// kickStep: writeback is started at least this much at a time.
const kickStep = 1 << 20

// kickLocked starts writeback of s's data written below end. Called with mu
// held.
func (l *Log) kickLocked(s *segment, end int64) {
	if end < s.kicked { // the file was cut back
		s.kicked = end
	}
	if end-s.kicked < kickStep {
		return
	}
	_ = kickWriteback(s.f.Fd(), s.kicked, end-s.kicked)
	s.kicked = end
}
