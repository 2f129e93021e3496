// Package plugin holds Foresight's Nomad Autoscaler plugins, one per
// folder as the autoscaler's own repository lays them out, each served as
// its own binary from cmd/foresight-*:
//
//   - strategy (foresight-strategy): scales a group's count on a forecast
//     of its demand;
//   - apm (foresight-apm): answers the autoscaler's queries with the
//     Foresight leader's usage series and forecasts;
//   - target (foresight-target): hands the autoscaler's scaling actions to
//     the leader, which decides where instances go and makes room.
//
// They talk to the leader through package leaderapi only. Package host
// runs Nomad Autoscaler target plugins for the leader's capacity, and
// simtarget is a target plugin that resizes sim's node groups. The
// end-to-end tests here run the real autoscaler with all three.
package plugin
