# The agents' config in `make demo`. The web job opts in with
# foresight.mode = "enforce" (examples/sim/jobs/web.json); the cloud node
# group is provider capacity that Foresight buys through a Nomad Autoscaler
# target plugin, foresight-sim-target, found beside the foresight binary.
# The pool starts at zero nodes: the node block says what one cloud node is
# (hybrid.hcl's "cloud" group: 4 cores of 2500 MHz, 16 GiB, SSD, 25 Gbit/s),
# so that Foresight can buy the first one when the forecast needs it.
orchestrator {
  capacity "cloud" {
    driver         = "foresight-sim-target"
    target         = { node_group = "cloud" }
    classes        = ["provider-ssd-standard-25g"]
    min            = 0
    max            = 8
    scale_in_delay = "30m"
    node {
      cpu_mhz    = 10000
      memory_mb  = 16384
      node_class = "cloud-general"
      datacenter = "dc1"
      node_pool  = "provider"
      meta = {
        "foresight.storage"  = "ssd"
        "foresight.mem_tier" = "standard"
        "foresight.net_tier" = "25g"
      }
    }
  }
}
