# Foresight agent: one per Nomad client, as a system job. Every agent samples
# the tasks of its node and ships them to the leader, which one of them
# becomes through a Consul lock.
#
#   make release VERSION=0.1.0     # dist/foresight_0.1.0_linux_amd64.tar.gz, SHA256SUMS, …
#   nomad job run \
#     -var foresight_url=https://<where you publish dist/>/foresight_0.1.0_linux_amd64.tar.gz \
#     -var foresight_checksum=sha256:<its line in dist/SHA256SUMS> \
#     jobs/foresight.nomad.hcl
#
# The agent reads task cgroups, network namespaces, the tasks' processes in
# /proc (as root) and /sys on the host, so it runs with raw_exec (enable it
# on the clients: plugin "raw_exec" { config { enabled = true } }).

variable "foresight_url" {
  type        = string
  description = "URL of the foresight_<version>_linux_<arch>.tar.gz that make release builds"
}

variable "foresight_checksum" {
  type        = string
  description = "its checksum as go-getter takes it: sha256:<hex>, from dist/SHA256SUMS"
}

variable "arch" {
  type        = string
  description = "the CPU architecture the tarball is built for (amd64 or arm64); the job runs only on clients of it"
  default     = "amd64"
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

  constraint {
    attribute = "${attr.cpu.arch}"
    value     = var.arch
  }

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

      # On SIGTERM (a stop, a rolling update) the leader ends its term and
      # releases the Consul lock, so that another agent takes over at once
      # instead of after the session expires (up to 20 s); give it time.
      kill_timeout = "15s"

      artifact {
        source = var.foresight_url
        options {
          checksum = var.foresight_checksum
        }
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
        # go-plugin (the capacity targets' plugins) puts its sockets in
        # TMPDIR: the task's own directory, not the client's TMPDIR.
        TMPDIR = "${NOMAD_TASK_DIR}"
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }
}
