# The Nomad Autoscaler with Foresight's plugins: foresight-strategy
# (forecast-driven counts), foresight-apm (the leader's usage and forecasts
# as metrics) and foresight-target (hand scaling actions to the leader).
#
#   make release VERSION=0.1.0
#   nomad job run \
#     -var foresight_plugins_url=https://<where you publish dist/>/foresight-plugins_0.1.0_linux_amd64.tar.gz \
#     -var foresight_plugins_checksum=sha256:<its line in dist/SHA256SUMS> \
#     jobs/autoscaler.nomad.hcl
#
# How the plugins reach the autoscaler's plugin_dir: by artifact. The
# tarball (foresight-strategy, foresight-apm and foresight-target at its
# top level; `make release` builds it) is fetched into the task's
# own directory with the autoscaler itself, so the binaries move with the
# allocation, their version is pinned by the job, and no client needs
# preparing. A host volume would also work, but then every client that may
# run the autoscaler must be provisioned with the same files out of band.
#
# Policies: the autoscaler reads scaling policies from jobs (the Nomad
# source) and from files; examples/autoscaler/ has both kinds, and the
# policies/ files below are rendered from Nomad variables you control. The
# job starts without any such variable: no template here waits for data
# that may not exist (jobs_test.go checks it).

variable "autoscaler_url" {
  type        = string
  description = "Nomad Autoscaler linux/amd64 release archive"
  default     = "https://releases.hashicorp.com/nomad-autoscaler/0.5.0/nomad-autoscaler_0.5.0_linux_amd64.zip"
}

variable "foresight_plugins_url" {
  type        = string
  description = "URL of the foresight-plugins_<version>_linux_amd64.tar.gz that make release builds (foresight-strategy, foresight-apm, foresight-target)"
}

variable "foresight_plugins_checksum" {
  type        = string
  description = "its checksum as go-getter takes it: sha256:<hex>, from dist/SHA256SUMS"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "autoscaler" {
  type        = "service"
  datacenters = var.datacenters

  group "autoscaler" {
    count = 1

    network {
      port "http" {}
    }

    service {
      name     = "nomad-autoscaler"
      port     = "http"
      provider = "consul"
      check {
        type     = "http"
        path     = "/v1/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "autoscaler" {
      driver = "exec"

      # The autoscaler talks to Nomad with this task's workload identity
      # (NOMAD_TOKEN). Attach an ACL policy to the job that can read jobs and
      # scaling policies and scale jobs (scale-job, read-job, list-jobs in
      # the namespaces it scales).
      identity {
        env = true
      }

      artifact {
        source      = var.autoscaler_url
        destination = "local/bin"
      }

      artifact {
        source      = var.foresight_plugins_url
        destination = "local/plugins"
        options {
          checksum = var.foresight_plugins_checksum
        }
      }

      config {
        command = "local/bin/nomad-autoscaler"
        args    = ["agent", "-config", "local/config.hcl"]
      }

      # go-plugin puts the plugins' sockets in TMPDIR: keep them in the
      # task's own directory rather than the client's TMPDIR, which leaks
      # into exec tasks and may not exist inside their chroot.
      env {
        TMPDIR = "${NOMAD_TASK_DIR}"
      }

      template {
        destination = "local/config.hcl"
        data        = <<-EOT
          plugin_dir = "{{ env "NOMAD_TASK_DIR" }}/plugins"

          http {
            bind_address = "0.0.0.0"
            bind_port    = {{ env "NOMAD_PORT_http" }}
          }

          nomad {
            address = "http://{{ env "attr.unique.network.ip-address" }}:4646"
          }

          policy {
            dir                         = "{{ env "NOMAD_TASK_DIR" }}/policies"
            default_evaluation_interval = "1m"
            default_cooldown            = "5m"
          }

          # Any Foresight agent answers (standbys redirect to the leader); the
          # plugins also find the leader through Consul when no address is set.
          {{ range $i, $s := service "foresight" }}{{ if eq $i 0 }}
          apm "foresight-apm" {
            driver = "foresight-apm"
            config = {
              address = "http://{{ $s.Address }}:{{ $s.Port }}"
            }
          }

          strategy "foresight-strategy" {
            driver = "foresight-strategy"
            config = {
              address = "http://{{ $s.Address }}:{{ $s.Port }}"
            }
          }

          target "foresight-target" {
            driver = "foresight-target"
            config = {
              address = "http://{{ $s.Address }}:{{ $s.Port }}"
            }
          }
          {{ end }}{{ end }}
        EOT
        # Re-render (and restart) when the Foresight agents move.
        change_mode = "restart"
      }

      # File policies, one Nomad variable item per policy file: store them
      # with `nomad var put nomad/jobs/autoscaler web_policy=@examples/autoscaler/policies/strategy-metrics.hcl`
      # (or under nomad/jobs/autoscaler/<anything>). nomadVarList renders
      # an empty list while no such variable exists, where nomadVar would
      # hold the task in pending until one does; nomadVar is only called
      # on the paths it lists. The autoscaler reads its policy folder at
      # start and on SIGHUP, so a new or changed variable reloads it.
      template {
        destination   = "local/policies/variables.hcl"
        data          = <<-EOT
          {{ range $v := nomadVarList "nomad/jobs/autoscaler" }}{{ with nomadVar $v.Path }}{{ range $name, $body := . }}
          # {{ $v.Path }}: {{ $name }}
          {{ $body }}
          {{ end }}{{ end }}{{ end }}
        EOT
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
