// Package group is the consumer-group coordinator: the classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the KIP-848
// consumer protocol (ConsumerGroupHeartbeat) and durable
// committed offsets. This broker is the coordinator of every group.
//
// # Concurrency
//
// Each group's membership state is owned by one goroutine (an actor): the
// coordinator posts closures to the group over a bounded channel and the
// caller waits on a per-request reply channel. Nothing on the heartbeat path
// takes a lock shared between groups: the registry is a sync.Map. Timers
// (session and rebalance timeouts) post back into the owning goroutine.
// Committed offsets live in the internal topic __consumer_offsets
// (offsets.go), reached through statelog.Partition; the group actor only
// validates a commit (member, generation), the durable write happens on the
// caller's goroutine so an fsync never delays a group's heartbeats. The
// actor appends its own group-metadata records (persist.go, persist848.go)
// without waiting for them.
//
// # State machine
//
// Empty -> PreparingRebalance (first join; this initial join phase ends only
// after Options.InitialRebalanceDelay, extended while members keep joining,
// as Kafka's InitialDelayedJoin) -> CompletingRebalance (every
// known member rejoined, or the rebalance timeout removed those that did not;
// the generation is bumped, a protocol every member supports is chosen by
// vote, the leader receives all members' metadata) -> Stable (the leader's
// SyncGroup distributes the assignment) -> PreparingRebalance (a member
// joins, leaves, changes its metadata, the leader rejoins, or a session
// expires) ... -> Empty when the last member leaves. Dead is terminal: the
// group was deleted or expired, and requests that still reach it answer
// COORDINATOR_NOT_AVAILABLE so the client retries against a fresh group.
//
// # Consumer protocol (KIP-848)
//
// A group runs either the classic protocol or the consumer protocol
// (ConsumerGroupHeartbeat), never both: the consumer-protocol state hangs off
// the same group actor (consumer.go) and an empty group switches protocol on
// the next join. The coordinator computes a target assignment with a
// server-side assignor (assign.go: "uniform", sticky, the default; "range")
// whenever the group epoch bumps; members reconcile one heartbeat at a time
// and receive a partition only once no other member owns or is revoking it.
// Invariant: at any moment each partition has at most one member in the
// owners map, and a member is told it may own only partitions it holds there.
//
// Persistence: offsets and group state are records of __consumer_offsets
// in Kafka's schemas: offsets (offsets.go), classic groups (persist.go) and
// KIP-848 consumer groups as key versions 3-8 (persist848.go, encoded in
// records848.go since kmsg has no types for them). After a restart a Stable
// group of either protocol is restored (a consumer group with its group and
// assignment epochs, target assignment and every member's epochs and
// partitions, the owners map rebuilt from them) and its members carry on
// heartbeating without a rebalance. The private offsets log of earlier
// releases is migrated at the first start (migrate.go).
package group
