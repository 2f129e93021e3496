// Package wire is how telemetry travels from the node agents to the leader:
// the gRPC protocol (package ingestpb), the columnar sample block both sides
// encode and decode, and the mutual TLS that secures the stream. The
// Shipper on every agent (package agent/node/ship) streams the batches of
// its durable buffer (package agent/node/buffer), and the Server on the
// leader (package agent/leader/ingest) validates them, removes duplicates
// and hands them to a Sink (the leader's store).
//
// The promise, end to end:
//
//   - The leader acknowledges a batch only after its Sink accepted it, or
//     when it is a duplicate, or when it rejects it. A rejected batch
//     (malformed, over a limit, refused by the Sink) changed nothing, and
//     its ack carries the reason.
//   - The agent marks a batch acknowledged in its buffer only on the
//     leader's ack, and after every reconnect resends everything not yet
//     acknowledged, in sequence order, with the original sequence numbers.
//     A rejected batch is acknowledged too (resending it cannot succeed):
//     the agent logs and counts it instead of retrying it forever.
//   - The leader drops a batch whose (agent, sequence number) it has already
//     taken, so resends and replays never count twice. Sequence numbers are
//     per buffer: an agent whose buffer was wiped starts a new sequence and
//     the leader forgets the old one.
//   - Until the leader's address resolves, and while it is unreachable, the
//     agent keeps buffering; its buffer's size and age bounds decide what is
//     lost in a long outage, and say so.
//   - A new leader calls Server.RequestReplay; every agent then streams its
//     retained history from that time, acknowledged batches included, and
//     the leader takes each batch it has not seen exactly once.
//
// Limits: a sample's time travels with millisecond precision. The leader
// remembers the sequence numbers it took as a set of ranges per agent,
// pruned below the oldest batch the agent still retains and capped, so a
// batch resent after falling out of that memory would count twice; the store
// still drops identical samples. With TLS configured, only clients with a
// certificate signed by the configured CA may stream, but any such client
// may speak for any agent id.
package wire
