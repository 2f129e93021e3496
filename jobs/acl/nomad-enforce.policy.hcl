# Nomad ACL policy for Foresight where groups opt in to enforce mode
# (foresight.mode = "enforce"): the recommend policy plus what acting takes.
#
#   nomad acl policy apply -description "Foresight (enforce)" foresight jobs/acl/nomad-enforce.policy.hcl
#
# Foresight writes only to groups that opted in, and every write is a
# check-and-set on the job's modify index; the ACL cannot express "only
# opted-in groups", so restrict the namespaces below to the ones whose jobs
# may opt in if you want the token itself to say so.

namespace "*" {
  capabilities = [
    "list-jobs",
    "read-job",
    "submit-job",      # plan, then register with EnforceIndex: count, resources, Foresight's affinities
    "alloc-lifecycle", # stop a misplaced allocation so that Nomad reschedules it where it fits better
  ]
}

# Dynamic node metadata (foresight.* traits): /v1/client/metadata.
node {
  policy = "write"
}

# Only without node_id in the agent's config (see the recommend policy).
agent {
  policy = "read"
}
