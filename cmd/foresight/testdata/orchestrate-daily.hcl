# A hybrid cluster for the end-to-end test of the leader's decision loop
# over a daily cycle (cmd/foresight/orchestrate_e2e_test.go): two external
# nodes that hold 8 allocations of web, and a provider pool of the same
# nodes that Foresight resizes through foresight-sim-target.
#
# The demand is a real trace (crane-input0, Apache-2.0) with its time axis
# compressed 24 times: one recorded day plays in one simulated hour, the
# shortest season the forecaster searches on its one-minute grid. Its daily
# peak needs about 17 allocations.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "onprem" {
  platform   = "external"
  count      = 2
  node_class = "onprem"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 16384
  disk_mb    = 20000
}

node_group "cloud" {
  platform        = "provider"
  min             = 1
  max             = 4
  count           = 1
  provision_delay = "4m"
  node_class      = "cloud"
  cpu_mhz         = 2000
  cores           = 2
  memory_mb       = 16384
  disk_mb         = 20000
}

job "web" {
  file = "jobs/orchestrate-web.json"

  workload "web" {
    trace          = "../../../examples/traces/crane-input0.csv"
    time_scale     = 24
    scale          = 100
    memory_base_mb = 128
  }
}
