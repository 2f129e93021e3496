# Two external node classes for the end-to-end test of migration
# (cmd/foresight/orchestrate_e2e_test.go): three small nodes with SSDs and
# four larger ones with spinning disks. Bin-packing and job anti-affinity
# place three of batch's four allocations on the SSD nodes and one on a
# disk node. But batch secretly does the same work with half the CPU on
# the disk nodes (efficiency 2), which only what Foresight observes can
# tell. Its demand is a real trace (crane-input9, Apache-2.0) played 24
# times faster than recorded, close to what its four allocations hold.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "ssd" {
  platform   = "external"
  count      = 3
  node_class = "ssd"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 16384
  disk_mb    = 20000
}

node_group "hdd" {
  platform   = "external"
  count      = 4
  node_class = "hdd"
  storage    = "hdd"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 32768
  disk_mb    = 20000
}

job "batch" {
  file = "jobs/orchestrate-batch.json"

  workload "batch" {
    trace      = "../../../examples/traces/crane-input9.csv"
    time_scale = 24
    scale      = 4
    efficiency = { hdd = 2 }
  }
}
