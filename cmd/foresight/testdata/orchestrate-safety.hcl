# Two external nodes and three jobs for the end-to-end test of what the
# leader must not write (cmd/foresight/orchestrate_e2e_test.go): "api" and
# "moving" in the default recommend mode, "bad" in enforce mode with an
# impossible policy. Their demand is a real trace (crane-input0,
# Apache-2.0) played 240 times faster than recorded, so that the count the
# leader wants keeps changing from one decision to the next.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "onprem" {
  platform   = "external"
  count      = 2
  node_class = "onprem"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 16384
  disk_mb    = 20000
}

job "api" {
  file = "jobs/orchestrate-api.json"

  workload "api" {
    trace      = "../../../examples/traces/crane-input0.csv"
    time_scale = 240
    scale      = 20
  }
}

job "moving" {
  file = "jobs/orchestrate-moving.json"

  workload "moving" {
    trace      = "../../../examples/traces/crane-input0.csv"
    time_scale = 240
    scale      = 30
  }
}

job "bad" {
  file = "jobs/orchestrate-bad.json"

  workload "bad" {
    trace      = "../../../examples/traces/crane-input0.csv"
    time_scale = 240
    scale      = 10
  }
}
