# Nomad ACL policy for the Nomad Autoscaler that runs Foresight's plugins.
#
#   nomad acl policy apply -description "Nomad Autoscaler" autoscaler jobs/acl/nomad-autoscaler.policy.hcl
#   nomad acl token create -name autoscaler -policy autoscaler
#
# The plugins send the autoscaler's own Nomad token to the Foresight
# leader (or the token in their `token` config key), and the leader allows
# them what this policy allows in Nomad. Narrow "*" to the namespaces the
# autoscaler scales.

namespace "*" {
  # scale: list and read scaling policies, read a job's scale status,
  # scale a group (Nomad's nomad-target; foresight-target's scale request).
  policy = "scale"
  capabilities = [
    "read-job", # foresight-apm and foresight-strategy read groups' usage and forecasts
  ]
}
