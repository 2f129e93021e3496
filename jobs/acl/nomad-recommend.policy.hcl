# Nomad ACL policy for Foresight in recommend mode: it samples, fingerprints,
# forecasts and reports what it would change, and writes no job.
#
#   nomad acl policy apply -description "Foresight (recommend)" foresight jobs/acl/nomad-recommend.policy.hcl
#   nomad acl token create -name foresight -policy foresight
#
# Every agent can become the leader, so every agent uses the same token.

namespace "*" {
  capabilities = [
    "list-jobs", # the leader lists allocations and jobs in every namespace
    "read-job",  # job specs, allocations, their stats (/v1/client/allocation/:id/stats), scale status
  ]
}

# Dynamic node metadata: each agent publishes its node's foresight.* traits
# through /v1/client/metadata, which takes node:write (write includes read,
# which listing nodes and following their allocations needs).
node {
  policy = "write"
}

# Only when the agent runs without node_id: it asks the local Nomad agent
# for its node ID (/v1/agent/self). The system job sets node_id, so drop
# this block when you use it.
agent {
  policy = "read"
}
