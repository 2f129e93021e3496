// Package consul is the Consul half of sim: an in-memory Consul agent and
// server in one, serving the subset of the Consul 1.16 HTTP API that
// Foresight, the official github.com/hashicorp/consul/api client and the
// consul CLI rely on, so that Foresight runs end to end without a Consul.
//
// What it serves, derived from its state and shaped like the answers of a
// Consul 1.16.3 dev agent (4-space indented JSON ending in a newline, the
// same status codes, headers and error texts):
//
//   - status: leader, peers
//   - KV: get (raw, keys, recurse, separator), put (flags, cas, acquire,
//     release), delete (cas, recurse), with one raft-like index, tombstones
//     and Consul's index rules for keys and prefixes
//   - sessions: create, info, list, node, renew, destroy; a TTL session is
//     invalidated exactly 2 × TTL after its last renewal on the injected
//     clock (what Consul's leader timer does; Consul only promises "not
//     before the TTL"), and can be neither renewed nor used to acquire
//     after that instant even if the reaper has not run yet; invalidation
//     (destroy, TTL, a tied check going critical or away) releases or
//     deletes held keys per Behavior and starts their lock-delay (capped at
//     60 s as Consul does) from the moment of invalidation, during which
//     acquires fail; a release starts none
//   - agent: self, members, services and service/<id> (with ContentHash and
//     hash blocking), service register/deregister, checks, TTL check updates
//     (pass, warn, fail, update) and TTL check expiry
//   - catalog services, service/<name> (?tag), nodes; health service/<name>
//     (?passing, ?tag), checks/<name>, state/<state>
//   - config entries service-defaults, service-resolver, service-splitter and
//     proxy-defaults: put (with cas), get, list, delete (with cas), with the
//     discovery-chain validation Foresight relies on
//
// Blocking queries follow Consul: ?index blocks until the answer's index
// passes it, ?wait defaults to 5m and is capped at 10m, plus a random
// stagger of up to 1/16 of the wait; on timeout the current answer comes
// back with its unchanged index. The wait runs on real time, since it is an
// HTTP concern; session and check TTLs and lock-delays run on the clock
// given in Options.
//
// Where sim knowingly differs from Consul:
//
//   - One node, one datacenter, no ACLs (X-Consul-Default-Acl-Policy:
//     allow), no WAN: ?dc of another datacenter fails with "No path to
//     datacenter". Namespaces and partitions are ignored.
//   - Every write wakes every blocked query, which re-reads and goes back to
//     sleep if its index did not move; Consul wakes only queries whose data
//     changed. Answers are the same; only the cost differs.
//   - Raft indexes advance on every write, as in Consul, but start from 1 on
//     a fresh sim; tombstones are never reaped.
//   - Checks are never probed: their status changes only through
//     SetCheckStatus, SetServiceHealth, the TTL endpoints or TTL expiry.
//     Content hashes are computed differently from Consul's (same meaning,
//     other values); Nomad check IDs hash the check definition like Nomad,
//     but not with Nomad's exact fields.
//   - Filters (?filter, ?node-meta, ?near, ?peer) are refused with a 400
//     saying so, rather than ignored. Resolver subset filters are stored but
//     not evaluated. Connect/proxy service kinds, the catalog register
//     endpoints, transactions, events, prepared queries and the config entry
//     kinds other than the four above are not served; the kinds Consul
//     knows are refused with a 400 naming them.
//   - Config entry bodies are read with Consul's field names, case
//     insensitively, but not its snake_case aliases, and unknown fields fail
//     with encoding/json's message rather than mapstructure's.
//   - Responses are never gzip-compressed (Vary: Accept-Encoding is still
//     set, as Consul does).
//
// The Nomad half of sim registers allocation services through
// RegisterNomadService and DeregisterAlloc, the way a Nomad client does for
// provider = "consul" services, and drives their health with
// SetServiceHealth or SetCheckStatus.
package consul
