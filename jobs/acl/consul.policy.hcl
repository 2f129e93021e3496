# Consul ACL policy for Foresight's agents.
#
#   consul acl policy create -name foresight -rules @jobs/acl/consul.policy.hcl
#   consul acl token create -description "Foresight agents" -policy-name foresight
#
# Every agent can become the leader, so every agent uses the same token.

# The leader election lock (foresight/leader) and the cluster-wide pause
# switch (foresight/paused). Nothing else under KV is read or written.
key_prefix "foresight/" {
  policy = "write"
}

# The election holds its lock with a session tied to the agent's Consul
# node. Narrow "" to your client nodes' name prefix if they share one.
session_prefix "" {
  policy = "write"
}

# Routing: traffic follows tasks that moved through service-resolver and
# service-splitter config entries, which take service:write on the service
# (Consul's config API), and reads healthy instances (/v1/health/service).
# In recommend mode, or to route only some services, use "read" here and
# grant write per service:   service "web" { policy = "write" }
service_prefix "" {
  policy = "write"
}

# Health answers name the nodes instances run on.
node_prefix "" {
  policy = "read"
}
