# A job whose scaling policy uses Foresight's plugins, read by the
# autoscaler's Nomad policy source. The strategy forecasts from the
# group's usage served by foresight-apm (five days, so a daily cycle is
# seen), and the autoscaler's nomad-target writes the count.
job "web" {
  datacenters = ["dc1"]

  group "web" {
    count = 3

    scaling {
      enabled = true
      min     = 2
      max     = 30

      policy {
        evaluation_interval = "1m"
        cooldown            = "3m"

        check "cpu-forecast" {
          source       = "foresight-apm"
          query        = "usage:default/web/web:cpu_mhz"
          query_window = "120h"

          strategy "foresight-strategy" {
            target   = 400   # MHz per instance
            horizon  = "20m" # start-up lead time
            quantile = 0.9
            step     = "5m"
          }
        }
      }
    }

    network {
      port "http" {
        to = 8080
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = "hashicorp/http-echo:1.0"
        args  = ["-listen", ":8080", "-text", "hello"]
        ports = ["http"]
      }

      resources {
        cpu    = 500
        memory = 128
      }
    }
  }
}
