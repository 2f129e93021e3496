# The agents' config in `make demo`. The web job opts in with
# foresight.mode = "enforce" (examples/sim/jobs/web.json); the cloud node
# group is provider capacity that Foresight buys through a Nomad Autoscaler
# target plugin, foresight-sim-target, found beside the foresight binary.
orchestrator {
  capacity "cloud" {
    driver         = "foresight-sim-target"
    target         = { node_group = "cloud" }
    classes        = ["provider-ssd-standard-25g"]
    min            = 1
    max            = 8
    scale_in_delay = "30m"
  }
}
