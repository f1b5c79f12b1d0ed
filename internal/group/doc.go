// Package group is the consumer-group coordinator: the classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and durable
// committed offsets. This broker is the coordinator of every group.
//
// # Concurrency
//
// Each group's membership state is owned by one goroutine (an actor): the
// coordinator posts closures to the group over a bounded channel and the
// caller waits on a per-request reply channel. Nothing on the heartbeat path
// takes a lock shared between groups: the registry is a sync.Map. Timers
// (session and rebalance timeouts) post back into the owning goroutine.
// Committed offsets live in the offsets log (offsets.go), which has its own
// locks; the group actor only validates a commit (member, generation), the
// durable write happens on the caller's goroutine so an fsync never delays a
// group's heartbeats.
//
// # State machine
//
// Empty -> PreparingRebalance (first join) -> CompletingRebalance (every
// known member rejoined, or the rebalance timeout removed those that did not;
// the generation is bumped, a protocol every member supports is chosen by
// vote, the leader receives all members' metadata) -> Stable (the leader's
// SyncGroup distributes the assignment) -> PreparingRebalance (a member
// joins, leaves, changes its metadata, the leader rejoins, or a session
// expires) ... -> Empty when the last member leaves. Dead is terminal: the
// group was deleted or expired, and requests that still reach it answer
// COORDINATOR_NOT_AVAILABLE so the client retries against a fresh group.
//
// Membership is not persisted: after a restart every group is Empty, members
// get UNKNOWN_MEMBER_ID and rejoin, which forms a new generation. Offsets are
// persisted (see offsets.go for the log format).
package group
