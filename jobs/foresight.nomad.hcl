# Foresight agent: one per Nomad client, as a system job. Every agent samples
# the tasks of its node and ships them to the leader, which one of them
# becomes through a Consul lock.
#
#   nomad job run jobs/foresight.nomad.hcl
#
# The agent reads task cgroups, network namespaces, the tasks' processes in
# /proc (as root) and /sys on the host, so it runs with raw_exec (enable it on the clients: plugin "raw_exec" { config
# { enabled = true } }). Point `artifact` at where you publish the binary.

variable "foresight_url" {
  type        = string
  description = "URL of the foresight linux/amd64 binary (tarball or plain file)"
  default     = "https://example.invalid/foresight/foresight_linux_amd64.tar.gz"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "foresight" {
  type        = "system"
  datacenters = var.datacenters
  node_pool   = "all"
  priority    = 90

  group "agent" {
    network {
      port "http" {
        static = 7460
      }
      port "grpc" {
        static = 7461
      }
    }

    service {
      name     = "foresight"
      port     = "http"
      provider = "consul"
      check {
        type     = "http"
        path     = "/v1/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "agent" {
      driver = "raw_exec"

      artifact {
        source = var.foresight_url
      }

      config {
        command = "local/foresight"
        args    = ["agent", "-config", "local/agent.hcl"]
      }

      template {
        destination = "local/agent.hcl"
        data        = <<-EOT
          node_id   = "{{ env "node.unique.id" }}"
          data_dir  = "/var/lib/foresight"
          bind      = "0.0.0.0:{{ env "NOMAD_PORT_http" }}"
          grpc_bind = "0.0.0.0:{{ env "NOMAD_PORT_grpc" }}"
          advertise = "{{ env "attr.unique.network.ip-address" }}"

          nomad {
            address = "http://127.0.0.1:4646"
          }

          host {
            cgroup_root = "/sys/fs/cgroup"
            proc_root   = "/proc"
            sys_root    = "/sys"
            alloc_dir   = "{{ env "NOMAD_ALLOC_DIR" }}/../.."
          }
        EOT
      }

      # Tokens come from Nomad Workload Identity / Vault in production; the
      # agent also honours NOMAD_TOKEN and CONSUL_HTTP_TOKEN.
      env {
        CONSUL_HTTP_ADDR = "127.0.0.1:8500"
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }
}
