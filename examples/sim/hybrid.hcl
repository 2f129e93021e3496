# A hybrid cluster: six fixed nodes the operator owns (two node classes) and
# an elastic provider pool bought on demand. Three services follow real
# production traces. Each service does its work more cheaply on one class:
# the hidden efficiencies below are what Foresight's profiler has to discover.

start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "ext-general" {
  platform   = "external"
  count      = 4
  datacenter = "dc1"
  node_pool  = "external"
  node_class = "ssd-general"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 16384
  disk_mb    = 200000
  io_mbps    = 500
  net_mbits  = 10000
  meta = {
    rack = "r1"
  }
}

node_group "ext-highmem" {
  platform   = "external"
  count      = 2
  datacenter = "dc1"
  node_pool  = "external"
  node_class = "high-memory"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 65536
  disk_mb    = 200000
  io_mbps    = 150
  storage    = "hdd"
  net_mbits  = 10000
}

node_group "cloud" {
  platform        = "provider"
  min             = 0
  max             = 20
  count           = 0
  provision_delay = "4m"
  datacenter      = "dc1"
  node_pool       = "provider"
  node_class      = "cloud-general"
  cpu_mhz         = 2500
  cores           = 4
  memory_mb       = 16384
  disk_mb         = 100000
  io_mbps         = 250
  net_mbits       = 25000
}

job "web" {
  file = "jobs/web.json"

  workload "web" {
    trace          = "../traces/crane-input0.csv"
    column         = "value"
    scale          = 100 # MHz of work per trace unit
    memory_base_mb = 128
    memory_per_ghz = 96
    net_rx_per_mhz = 2000
    net_tx_per_mhz = 8000
    efficiency = {
      "cloud-general" = 1.15
    }
  }
}

job "api" {
  file = "jobs/api.json"

  workload "api" {
    trace          = "../traces/crane-input9.csv"
    scale          = 10
    memory_base_mb = 256
    memory_per_ghz = 512
    net_rx_per_mhz = 1000
    net_tx_per_mhz = 1000
    efficiency = {
      "high-memory" = 1.3
    }
  }
}

job "ingest" {
  file = "jobs/ingest.json"

  workload "ingest" {
    trace            = "../traces/crane-input2.csv"
    scale            = 20
    memory_base_mb   = 128
    memory_per_ghz   = 64
    io_read_per_mhz  = 4000
    io_write_per_mhz = 16000
    efficiency = {
      "ssd-general" = 1.25
    }
  }
}
