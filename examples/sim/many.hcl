# A larger hybrid cluster for the Affinity Profiler: six resource classes
# (three the operator owns, three bought from a provider) and 24 services
# following the real traces in ../traces, each with its own mix of memory,
# disk and network per unit of work.
#
# Every service has a hidden best class, unique to it, set by `efficiency`
# (the same work costs 1/e of the CPU there); some sit where their traits
# suggest (memory-heavy on high-memory, disk-heavy on SSD, network-heavy on
# fast links), others do not, so that only observation finds them. The
# profiler's end-to-end test (profiles/sim_test.go) checks that it ranks the
# best class first after 12 simulated hours.

start = "2026-01-05T00:00:00Z"
step  = "30s"

node_group "ext-ssd" {
  platform   = "external"
  count      = 8
  datacenter = "dc1"
  node_pool  = "external"
  node_class = "ssd-general"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 16384
  disk_mb    = 200000
  io_mbps    = 500
  storage    = "ssd"
  net_mbits  = 10000
}

node_group "ext-hdd" {
  platform   = "external"
  count      = 4
  datacenter = "dc1"
  node_pool  = "external"
  node_class = "hdd-storage"
  cpu_mhz    = 2000
  cores      = 8
  memory_mb  = 32768
  disk_mb    = 2000000
  io_mbps    = 200
  storage    = "hdd"
  net_mbits  = 10000
}

node_group "ext-highmem" {
  platform   = "external"
  count      = 6
  datacenter = "dc1"
  node_pool  = "external"
  node_class = "high-memory"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 65536
  disk_mb    = 200000
  io_mbps    = 400
  storage    = "ssd"
  net_mbits  = 10000
}

node_group "cloud-general" {
  platform        = "provider"
  min             = 0
  max             = 12
  count           = 6
  provision_delay = "4m"
  datacenter      = "dc1"
  node_pool       = "provider"
  node_class      = "cloud-general"
  cpu_mhz         = 2500
  cores           = 4
  memory_mb       = 16384
  disk_mb         = 100000
  io_mbps         = 250
  storage         = "ssd"
  net_mbits       = 25000
}

node_group "cloud-compute" {
  platform        = "provider"
  min             = 0
  max             = 12
  count           = 4
  provision_delay = "4m"
  datacenter      = "dc1"
  node_pool       = "provider"
  node_class      = "cloud-compute"
  cpu_mhz         = 3000
  cores           = 8
  memory_mb       = 16384
  disk_mb         = 100000
  io_mbps         = 250
  storage         = "ssd"
  net_mbits       = 25000
}

node_group "cloud-network" {
  platform        = "provider"
  min             = 0
  max             = 12
  count           = 5
  provision_delay = "4m"
  datacenter      = "dc1"
  node_pool       = "provider"
  node_class      = "cloud-network"
  cpu_mhz         = 2500
  cores           = 4
  memory_mb       = 16384
  disk_mb         = 100000
  io_mbps         = 250
  storage         = "ssd"
  net_mbits       = 100000
}

job "cache-a" {
  file = "jobs/many/cache-a.json"

  workload "cache-a" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.48
    memory_base_mb = 512
    memory_per_ghz = 1024
    net_rx_per_mhz = 1000
    net_tx_per_mhz = 3000
    efficiency = {
      "high-memory"   = 1.35
      "ssd-general"   = 1.08
      "cloud-compute" = 0.9
    }
  }
}

job "cache-b" {
  file = "jobs/many/cache-b.json"

  workload "cache-b" {
    trace          = "../traces/crane-input0.csv"
    scale          = 37.94
    memory_base_mb = 640
    memory_per_ghz = 900
    net_rx_per_mhz = 800
    net_tx_per_mhz = 2000
    efficiency = {
      "high-memory"   = 1.22
      "cloud-general" = 1.05
    }
  }
}

job "cache-c" {
  file = "jobs/many/cache-c.json"

  workload "cache-c" {
    trace          = "../traces/crane-input2.csv"
    scale          = 11.32
    memory_base_mb = 512
    memory_per_ghz = 960
    net_rx_per_mhz = 1000
    net_tx_per_mhz = 1000
    efficiency = {
      "cloud-compute" = 1.3
      "high-memory"   = 1.1
    }
  }
}

job "db-a" {
  file = "jobs/many/db-a.json"

  workload "db-a" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.22
    memory_base_mb = 384
    memory_per_ghz = 640
    io_read_per_mhz = 6000
    io_write_per_mhz = 10000
    net_rx_per_mhz = 500
    net_tx_per_mhz = 500
    efficiency = {
      "ssd-general" = 1.3
      "hdd-storage" = 0.8
      "high-memory" = 1.1
    }
  }
}

job "db-b" {
  file = "jobs/many/db-b.json"

  workload "db-b" {
    trace          = "../traces/crane-input2.csv"
    scale          = 10.81
    memory_base_mb = 384
    memory_per_ghz = 700
    io_read_per_mhz = 8000
    io_write_per_mhz = 6000
    net_rx_per_mhz = 500
    net_tx_per_mhz = 500
    efficiency = {
      "high-memory" = 1.28
      "ssd-general" = 1.12
    }
  }
}

job "db-c" {
  file = "jobs/many/db-c.json"

  workload "db-c" {
    trace          = "../traces/crane-input0.csv"
    scale          = 35.94
    memory_base_mb = 256
    memory_per_ghz = 512
    io_read_per_mhz = 5000
    io_write_per_mhz = 9000
    net_rx_per_mhz = 400
    net_tx_per_mhz = 400
    efficiency = {
      "cloud-general" = 1.25
      "ssd-general"   = 1.1
      "hdd-storage"   = 0.85
    }
  }
}

job "ingest-a" {
  file = "jobs/many/ingest-a.json"

  workload "ingest-a" {
    trace          = "../traces/crane-input2.csv"
    scale          = 11.82
    memory_base_mb = 128
    memory_per_ghz = 64
    io_read_per_mhz = 4000
    io_write_per_mhz = 16000
    net_rx_per_mhz = 2000
    net_tx_per_mhz = 200
    efficiency = {
      "ssd-general" = 1.25
      "hdd-storage" = 0.9
    }
  }
}

job "ingest-b" {
  file = "jobs/many/ingest-b.json"

  workload "ingest-b" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.35
    memory_base_mb = 128
    memory_per_ghz = 96
    io_read_per_mhz = 3000
    io_write_per_mhz = 12000
    net_rx_per_mhz = 1500
    net_tx_per_mhz = 300
    efficiency = {
      "cloud-general" = 1.2
      "cloud-network" = 1.07
    }
  }
}

job "ingest-c" {
  file = "jobs/many/ingest-c.json"

  workload "ingest-c" {
    trace          = "../traces/crane-input0.csv"
    scale          = 38.94
    memory_base_mb = 160
    memory_per_ghz = 64
    io_read_per_mhz = 2000
    io_write_per_mhz = 14000
    net_rx_per_mhz = 1000
    net_tx_per_mhz = 100
    efficiency = {
      "hdd-storage" = 1.18
      "ssd-general" = 1.06
    }
  }
}

job "ingest-d" {
  file = "jobs/many/ingest-d.json"

  workload "ingest-d" {
    trace          = "../traces/crane-input2.csv"
    scale          = 11.06
    memory_base_mb = 128
    memory_per_ghz = 80
    io_read_per_mhz = 5000
    io_write_per_mhz = 15000
    net_rx_per_mhz = 1800
    net_tx_per_mhz = 200
    efficiency = {
      "ssd-general"   = 1.4
      "cloud-general" = 1.15
    }
  }
}

job "edge-a" {
  file = "jobs/many/edge-a.json"

  workload "edge-a" {
    trace          = "../traces/crane-input0.csv"
    scale          = 45.92
    memory_base_mb = 128
    memory_per_ghz = 96
    net_rx_per_mhz = 9000
    net_tx_per_mhz = 24000
    efficiency = {
      "cloud-network" = 1.3
      "cloud-general" = 1.1
    }
  }
}

job "edge-b" {
  file = "jobs/many/edge-b.json"

  workload "edge-b" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.48
    memory_base_mb = 160
    memory_per_ghz = 128
    net_rx_per_mhz = 7000
    net_tx_per_mhz = 20000
    efficiency = {
      "cloud-network" = 1.22
      "ssd-general"   = 0.92
    }
  }
}

job "edge-c" {
  file = "jobs/many/edge-c.json"

  workload "edge-c" {
    trace          = "../traces/crane-input2.csv"
    scale          = 10.06
    memory_base_mb = 128
    memory_per_ghz = 96
    net_rx_per_mhz = 8000
    net_tx_per_mhz = 16000
    efficiency = {
      "ssd-general"   = 1.2
      "cloud-network" = 1.08
    }
  }
}

job "edge-d" {
  file = "jobs/many/edge-d.json"

  workload "edge-d" {
    trace          = "../traces/crane-input0.csv"
    scale          = 47.92
    memory_base_mb = 192
    memory_per_ghz = 128
    net_rx_per_mhz = 10000
    net_tx_per_mhz = 30000
    efficiency = {
      "cloud-network" = 1.45
      "cloud-compute" = 1.1
    }
  }
}

job "batch-a" {
  file = "jobs/many/batch-a.json"

  workload "batch-a" {
    trace          = "../traces/crane-input9.csv"
    scale          = 6.53
    memory_base_mb = 128
    memory_per_ghz = 64
    net_rx_per_mhz = 100
    net_tx_per_mhz = 100
    efficiency = {
      "cloud-compute" = 1.35
      "cloud-general" = 1.1
    }
  }
}

job "batch-b" {
  file = "jobs/many/batch-b.json"

  workload "batch-b" {
    trace          = "../traces/crane-input2.csv"
    scale          = 11.82
    memory_base_mb = 96
    memory_per_ghz = 48
    net_rx_per_mhz = 100
    net_tx_per_mhz = 100
    efficiency = {
      "cloud-compute" = 1.25
      "high-memory"   = 0.85
    }
  }
}

job "batch-c" {
  file = "jobs/many/batch-c.json"

  workload "batch-c" {
    trace          = "../traces/crane-input0.csv"
    scale          = 43.93
    memory_base_mb = 128
    memory_per_ghz = 64
    net_rx_per_mhz = 50
    net_tx_per_mhz = 50
    efficiency = {
      "hdd-storage"   = 1.2
      "cloud-compute" = 1.1
    }
  }
}

job "batch-d" {
  file = "jobs/many/batch-d.json"

  workload "batch-d" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.87
    memory_base_mb = 128
    memory_per_ghz = 80
    net_rx_per_mhz = 80
    net_tx_per_mhz = 80
    efficiency = {
      "cloud-general" = 1.18
      "cloud-compute" = 1.06
    }
  }
}

job "api-a" {
  file = "jobs/many/api-a.json"

  workload "api-a" {
    trace          = "../traces/crane-input9.csv"
    scale          = 4.96
    memory_base_mb = 256
    memory_per_ghz = 256
    io_read_per_mhz = 200
    io_write_per_mhz = 400
    net_rx_per_mhz = 2000
    net_tx_per_mhz = 4000
    efficiency = {
      "ssd-general"   = 1.15
      "cloud-general" = 1.05
    }
  }
}

job "api-b" {
  file = "jobs/many/api-b.json"

  workload "api-b" {
    trace          = "../traces/crane-input0.csv"
    scale          = 40.93
    memory_base_mb = 256
    memory_per_ghz = 320
    io_read_per_mhz = 200
    io_write_per_mhz = 300
    net_rx_per_mhz = 2500
    net_tx_per_mhz = 5000
    efficiency = {
      "cloud-general" = 1.22
      "cloud-network" = 1.1
    }
  }
}

job "api-c" {
  file = "jobs/many/api-c.json"

  workload "api-c" {
    trace          = "../traces/crane-input2.csv"
    scale          = 9.81
    memory_base_mb = 256
    memory_per_ghz = 288
    io_read_per_mhz = 100
    io_write_per_mhz = 200
    net_rx_per_mhz = 1500
    net_tx_per_mhz = 3000
    efficiency = {
      "high-memory" = 1.2
      "ssd-general" = 1.04
    }
  }
}

job "search-a" {
  file = "jobs/many/search-a.json"

  workload "search-a" {
    trace          = "../traces/crane-input9.csv"
    scale          = 5.61
    memory_base_mb = 384
    memory_per_ghz = 768
    io_read_per_mhz = 1000
    io_write_per_mhz = 500
    net_rx_per_mhz = 1000
    net_tx_per_mhz = 1000
    efficiency = {
      "high-memory"   = 1.25
      "cloud-compute" = 1.12
    }
  }
}

job "search-b" {
  file = "jobs/many/search-b.json"

  workload "search-b" {
    trace          = "../traces/crane-input2.csv"
    scale          = 10.56
    memory_base_mb = 384
    memory_per_ghz = 640
    io_read_per_mhz = 800
    io_write_per_mhz = 400
    net_rx_per_mhz = 1200
    net_tx_per_mhz = 1200
    efficiency = {
      "cloud-compute" = 1.3
      "high-memory"   = 1.12
    }
  }
}

job "search-c" {
  file = "jobs/many/search-c.json"

  workload "search-c" {
    trace          = "../traces/crane-input0.csv"
    scale          = 39.93
    memory_base_mb = 320
    memory_per_ghz = 700
    io_read_per_mhz = 900
    io_write_per_mhz = 300
    net_rx_per_mhz = 900
    net_tx_per_mhz = 900
    efficiency = {
      "ssd-general"   = 1.22
      "high-memory"   = 1.1
      "cloud-network" = 0.9
    }
  }
}
