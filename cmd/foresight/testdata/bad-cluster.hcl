node_group "a" {
  platform  = "external"
  cpu_mhz   = 2000
  cores     = 4
  memory_mb = 8192
  disk_mb   = 10000
}

job "web" {
  file = "missing.json"
}
