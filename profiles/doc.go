// Package profiles is Foresight's Affinity Profiler. It answers two
// questions for every task group: what does the group need, and on which
// kind of machine does it run best?
//
// It works on plain descriptions only, so that it can be tested and
// benchmarked alone: the leader fills [Node] from Nomad's node API and
// [Observation] from the agents' samples, and reads back [Profile] and
// [Score] values. It imports no Nomad or Consul package.
//
// The pieces, in the order data flows through them:
//
//   - [ClassesOf] groups nodes that share what matters for placement into
//     resource classes, with their capacity and free capacity.
//   - [Profiler.Observe] takes one sampling round of every running
//     allocation and accumulates, per group, its usage profile (intensity,
//     burstiness, pressure sensitivity) and the comparative evidence of how
//     efficiently it works on each class.
//   - [Profiler.Scores] turns a prior (the group's needs matched against
//     each class's traits) and the evidence into an affinity score in
//     Nomad's weight scale, −100…100, with a confidence and a one-line
//     reason.
//   - [Choose] picks the class to steer towards with a hysteresis margin,
//     and [Profiler.Explore] proposes a bounded share of placements on
//     classes with little evidence, so that a better class can be found.
package profiles
