// Package storage is the partition log: an append-only sequence of Kafka v2
// record batches split into segment files, with sparse indexes, crash
// recovery, truncation and deletion below a movable log start offset.
//
// # On-disk format
//
// A partition is a directory. Each segment is named by its base offset (the
// offset of its first record) as 20 zero-padded decimal digits:
//
//	00000000000000000000.log        record batches, byte for byte as the
//	                                client sent them, except that the base
//	                                offset (bytes 0..8, outside the CRC) is
//	                                the broker-assigned one
//	00000000000000000000.index      offset index: repeated
//	                                {relative offset uint32, position uint32}
//	00000000000000000000.timeindex  time index: repeated
//	                                {timestamp int64, relative offset uint32}
//	clean-shutdown                  the recovery point, written by Close and
//	                                Checkpoint: magic "CHRNKCL2", tail
//	                                segment base, its size and the log end
//	                                offset (int64 each), the byte lengths of
//	                                the tail's offset and time index (uint32
//	                                each), those entries (as in the index
//	                                files), CRC-32C of all of it. The tail
//	                                has no index files of its own: its index
//	                                is in the marker. Overwritten in place
//	                                (no new file; a torn one fails its CRC).
//	                                Format 1 ("CHRNKCL1", no index: the
//	                                tail's index files) is still read.
//	log-start-offset                written when the log start moves
//	                                (DeleteRecords, retention): magic
//	                                "CHRNKLS1", the start (int64), CRC-32C
//	cleaner-offset                  written before compaction swaps a segment:
//	                                magic "CHRNKCO1", the cleaned offset
//	                                (int64), CRC-32C
//	<base>.log.cleaned              compacted copy being written; deleted on Open
//	<base>.log.swap                 compacted copy, complete and fsynced; Open
//	                                renames it over <base>.log (dropping the
//	                                old index files first)
//
// All integers are big-endian. Relative offsets are offset - segment base.
//
// Compaction may rewrite batches below the cleaned offset the way Kafka's
// cleaner does: a batch that kept tombstones carries the delete horizon
// (attribute bit 6, AttrDeleteHorizon; the base timestamp is the horizon and
// record timestamp deltas are relative to it), and a producer's last batch
// may be a header with zero records.
//
// The offset index is sparse: an entry maps the base offset of a batch to the
// position of its first byte, added once at least IndexIntervalBytes of log
// were written since the previous entry. A lookup takes the last entry at or
// below the wanted offset and walks batch headers forward from there.
//
// A time index entry {T, O} says: every batch of the segment whose base offset
// is at most O has a max timestamp of at most T. Entries are added together
// with offset index entries, only when T grew, plus one final entry when the
// segment is sealed so that the file also holds the segment's max timestamp.
// A search for timestamp ts starts at the last entry with T < ts.
//
// Every file above other than the segments and the marker is written with
// WriteFileAtomic (file.go): a ".tmp" copy, fsynced, renamed over the
// file, then the directory fsynced; the partition layer writes its own
// files in the directory the same way (partition.metadata,
// leader-epoch-checkpoint). The marker and the partition layer's
// producers.snapshot are rewritten at every close of a changed log, so
// they are overwritten in place instead (OverwriteFile: no inode created
// or freed; creating files after much churn is what made closing
// thousands of partitions slow on ext4) and carry a CRC-32C that a torn
// write fails. Files ending in ".tmp" are incomplete atomic writes and
// are deleted on Open.
//
// # Invariants
//
//   - Offsets are contiguous at and above the cleaned offset (0 unless the
//     topic is compacted): each batch's base offset is the previous batch's
//     last offset + 1, across segments too (a segment's base is the previous
//     segment's end). Every batch spans at least one offset. Below the cleaned
//     offset compaction (clean.go) leaves gaps: offsets only increase, a
//     batch may hold fewer records than its offset span (its header keeps the
//     original base offset and last offset delta), none at all when it is
//     kept for its producer's sequence, a segment may start above
//     the previous one's last batch, and a segment may be empty (it keeps
//     its base so the log start does not move). Reads and index lookups at a
//     missing offset return the batch holding the next existing one.
//   - Readers never see a partial batch: a segment's size is published only
//     after the write of a batch completed, and readers stop there. ReadFile
//     (filerange.go) computes the same range as Read and hands out file
//     ranges instead of bytes.
//   - A segment's file is closed when the segment and every FileRange naming
//     it are done with it (a reference count): retention, compaction, Truncate
//     and Close drop the segment's reference, and a range still held (a fetch
//     response waiting to be sent) keeps reading the file, unlinked or not,
//     until it is released. The bytes a range names never change, except
//     through Truncate, which bumps the segment's cut counter before cutting;
//     a range whose counter moved reports !Intact.
//   - Index files on disk exist only for sealed segments whose log is
//     durable: written after the Sync that fsynced them. The tail's index
//     is in the clean-shutdown marker, which is written (after the data it
//     names is durable) by Close and Checkpoint. Before a roll or
//     truncate, the marker (and any tail index files a format-1 broker
//     left) is removed (unmarkLocked) and the next Sync fsyncs the
//     directory with the data. An append leaves it (unmarkAppendLocked,
//     staleMarker): the marker names the tail's size, a tail of another
//     size is validated on open, and a log that only grows never returns
//     to that size with other bytes (Truncate removes the marker durably
//     before it cuts); the next Close or Checkpoint overwrites it. So a
//     crash never pairs a stale marker with a changed log. A log opened
//     and closed (or killed) without a change is trusted again and its
//     Close writes nothing.
//   - DurableOffset never exceeds what was fsynced, here or in the group
//     committer's write-ahead log (MarkDurable; internal/wal): SyncedOffset <=
//     DurableOffset <= LogEndOffset. Sync fsyncs every segment rolled since
//     the previous Sync together with the active one (and the directory, if
//     a segment was created) before it advances SyncedOffset and
//     DurableOffset; data marked durable through the WAL is still fsynced by
//     the next Sync (the WAL is reset only after that, at a checkpoint).
//   - A failed fsync, or a failed write other than a full disk, fails the log
//     for good (ErrLogFailed): after a failed fsync Linux may have discarded
//     the dirty pages, so retrying could claim durability for data that is
//     gone. A write that finds the disk full (ENOSPC/EDQUOT) is cut back to
//     the last complete batch and reported as ErrDiskFull; the log stays
//     usable and appends succeed again once space returns. A buffered
//     batch (below) reserves its file space (fallocate) when appended, so
//     a full disk fails that append with ErrDiskFull, never the later write.
//     Reservations grow with the segment's data (4 KiB first, doubling up
//     to 1 MiB) and what is left beyond the end is released when the
//     segment is sealed or the log closed. Within a segment's first 64 KiB
//     a buffered batch is held against Options.Headroom (a ballast file
//     that gives up its space to such a write finding the disk full)
//     instead, or written through when that has no room (headroom.go).
//   - Small batches are buffered (wbuf.go): Append copies them to the
//     log's write buffer, written to the active segment with one write when
//     the log is synced, rolled, truncated or closed, when the buffer is
//     full, or when a reader asks for offsets only in it (so reads see every
//     appended batch). Unsynced hands the buffered tail to the WAL from
//     memory; data made durable that way may stay buffered (up to 128 KiB)
//     and reach the segment file only later: the WAL holds it until a
//     checkpoint, which Syncs the log first. So DurableOffset may exceed
//     what the segment files hold; a kill then loses only data that the WAL
//     replay puts back.
//   - The log start offset (first readable offset) is at least the first
//     segment's base and at most the durable offset when it is moved. Reads,
//     timestamp lookups and truncation below it are refused; a segment only
//     partly below it keeps its files. It is persisted (atomic write, fsync,
//     directory fsync) before any segment file below it is removed, so a
//     crash in between leaves files that Open removes; it never goes back.
//   - Only sealed segments are deleted, oldest first; the active segment
//     never is while active. Retention deletes an expired active segment by
//     sealing it first (RollActive), which it does only when the segment
//     holds data, all of it durable, and the log end is still the one the
//     caller decided on. The new segment's directory entry is fsynced with
//     the start checkpoint, before the old one is removed; a directory
//     found without segments starts at the persisted start, never below
//     it. A deleted segment still waiting for its fsync (durable only
//     in the WAL) leaves the pending list under syncMu, so no Sync touches
//     its closed file. The group committer's WAL replay only appends beyond
//     the log end, so deleting old segments cannot conflict with it (after a
//     power loss it may append deleted records again; they stay below the
//     persisted start and go at the next deletion).
//
// # Recovery
//
// Open trusts a segment without reading its batches when it is sealed (not
// the last) or is the tail named by a valid clean-shutdown marker with
// matching size and end offset, and its index (the index files; the
// marker's for the tail) is well formed and agrees with the log: only the
// batch headers after the last index entry are walked.
// Every other segment is validated from its first byte (length, magic, CRC-32C,
// record count, contiguous offsets, with the gaps above allowed below the
// cleaned offset) and truncated at the first bad batch, and
// its indexes are rebuilt. If a sealed segment had to be cut, all later
// segments are deleted: Sync never acknowledges data in a later segment before
// the earlier ones are durable, and data acknowledged through the WAL is put
// back by the broker's WAL replay, so nothing acknowledged is lost. Open
// fsyncs the tail after an unclean shutdown and every sealed segment without
// index files (never fsynced by a Sync): after Open the log end offset is also
// the synced and durable offset (so the WAL may be reset). A trusted tail
// keeps its marker (Marked) until the first change makes it stale; an
// untrusted one loses it at Open, so a crash from here on is detected as
// unclean. Sealed segments found
// without index files get them after that fsync. Last, the log-start-offset
// file is read (a corrupt one is ignored: the first segment's base stands)
// and sealed segments wholly below it are removed. A start above the
// recovered log end (data durable only in the WAL) is reported as the log
// end until the WAL replay appends the rest.
//
// A new or empty log (one empty segment) is not fsynced by Open: there is
// nothing to make durable but the segment's directory entry, which the
// first Sync fsyncs with the data. With Options.DeferRecoverySync an unclean
// tail is validated but not fsynced either; the caller (the WAL replay at
// start) makes the filesystem durable with one SyncFS before relying on it.
//
// # Many logs at once
//
// SyncPoint splits a Sync around one syncfs(2) of the filesystem (SyncFS):
// PrepareSync writes the buffer and holds syncMu, the caller syncs the
// filesystem once for thousands of logs, Complete marks the prepared end
// synced (or fsyncs the log's own files if the syncfs failed). CloseBatch
// does the same for closing: CloseIn writes the data and the index files
// of newly sealed segments (as ".tmp" files) without fsync and leaves the
// marker (and the partition layer its snapshot) to Commit, which makes
// the data durable with one syncfs, renames the index files (and syncs
// again, if there were any), then overwrites the markers and snapshots
// in place and syncs once more, so no crash leaves a marker naming data
// that is not durable. CheckpointIn is the same for a log that stays open
// (the broker's recovery points for idle partitions).
//
// ReleaseFiles (release.go) closes a durable log's segment files and keeps
// its state, so that the partition layer can stay within a descriptor
// budget with more logs in use than descriptors; the next use reopens
// them (ReopenFiles), and the log's own paths that write or fsync reopen
// them too (ensureFilesLocked). Nothing is written or fsynced by a
// release but the write buffer.
//
// Compaction leftovers are handled before any segment is opened: a .cleaned
// file is deleted, a .swap file completes its swap (its segment's old index
// files are removed, then it is renamed over the .log), so a crash at any
// step of a swap leaves either the old or the new segment, never neither.
// The cleaner-offset file is read first (a corrupt one allows gaps below the
// tail segment's base, so outside damage to it cannot cut compacted
// segments); Truncate lowers it to the new log end.
//
// # Concurrency
//
// Append holds the append lock only for copying into the write buffer (or
// the page-cache write of a large batch). Sync writes the buffer, snapshots
// the files to flush under that lock and fsyncs without it. Reads hold no
// append lock: they read the segment list from an atomic snapshot and the
// index under a per-segment read lock. Deleting segments below the log start
// (SetLogStartOffset) holds syncMu, persists the new start, then swaps the
// segment snapshot with readMu held exclusively, so every reader that could
// still use a removed segment has finished before its reference on the file
// is dropped (ReadFile takes its references under readMu shared); a
// compaction swap replaces a segment the same way (the old file, already
// renamed over, is closed only then). Clean must not run concurrently with
// itself (the broker's single sweep goroutine calls it). Lock
// order: syncMu, readMu, mu, segment.mu.
package storage
