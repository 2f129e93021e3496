// Package orchestrator is Foresight's Resource Orchestrator: it decides, per
// task group, where the group should run, how many allocations it needs and
// how large they should be, and writes that to Nomad safely.
//
//   - PolicyOf resolves what a group allows from the operator's Config and
//     the job's foresight.* meta, and rejects bad values by key and value.
//   - Decide is a pure function from a group's policy, forecast demand,
//     usage, affinity scores, the classes' room and its recent actions to a
//     Decision with one reason per rule applied. It is cheap enough to run
//     for every group every interval (see BenchmarkDecidePass).
//   - Actuator.Apply reads the job, decides from what it read, plans, and
//     registers with EnforceIndex; its doc comment states what it promises.
//
// Decisions are recorded in the returned values (for the leader's decision
// log and API), never in job meta: in Nomad a meta change is a destructive
// update that replaces every allocation of the job.
package orchestrator
