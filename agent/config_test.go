package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/agent/leader/backfill"
)

func TestResolveAppliesDefaults(t *testing.T) {
	s, err := (&Config{}).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Bind != DefaultBind || s.GRPCBind != "0.0.0.0:7461" || s.SampleInterval != DefaultSampleInterval ||
		s.BufferBytes != DefaultBufferBytes || s.BufferAge != DefaultBufferAge || s.Host.CgroupRoot != DefaultCgroupRoot {
		t.Fatalf("defaults: %+v", s)
	}
	s, err = (&Config{Bind: "127.0.0.1:9000"}).Resolve()
	if err != nil || s.GRPCBind != "127.0.0.1:9001" {
		t.Fatalf("gRPC next to a custom bind: %v %q", err, s.GRPCBind)
	}
}

func TestResolveRefusesImpossibleConfigs(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"interval", Config{SampleInterval: "often"}, "sample_interval"},
		{"negative interval", Config{SampleInterval: "-1s"}, "sample_interval"},
		{"platform", Config{Platform: "moon"}, "platform"},
		{"bind", Config{Bind: "nowhere"}, "bind"},
		{"port", Config{Bind: "127.0.0.1:65535"}, "port"},
		{"grpc bind", Config{GRPCBind: "x"}, "grpc_bind"},
		{"buffer", Config{Buffer: &BufferConfig{MaxBytes: -1}}, "max_bytes"},
		{"buffer age", Config{Buffer: &BufferConfig{MaxAge: "forever"}}, "buffer.max_age"},
		{"ttl", Config{Leader: &LeaderConfig{SessionTTL: "soon"}}, "session_ttl"},
		{"half tls", Config{TLS: &TLSConfig{CAFile: "ca.pem"}}, "tls needs all"},
		{"mode", Config{Orchestrator: &leader.OrchestratorConfig{Mode: "yolo"}}, "orchestrator.mode"},
		{"decision interval", Config{Orchestrator: &leader.OrchestratorConfig{DecisionInterval: "0s"}}, "decision_interval"},
		{"capacity without plugin dir", Config{Orchestrator: &leader.OrchestratorConfig{Capacity: []leader.CapacityConfig{
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Min: 1, Max: 3}}}}, "plugin_dir"},
		{"capacity bounds", Config{Orchestrator: &leader.OrchestratorConfig{PluginDir: "/p", Capacity: []leader.CapacityConfig{
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Min: 4, Max: 3}}}}, "min"},
		{"capacity twice", Config{Orchestrator: &leader.OrchestratorConfig{PluginDir: "/p", Capacity: []leader.CapacityConfig{
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Max: 3},
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Max: 3}}}}, "declared twice"},
		{"capacity node size", Config{Orchestrator: &leader.OrchestratorConfig{PluginDir: "/p", Capacity: []leader.CapacityConfig{
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Max: 3, Node: &leader.NodeConfig{MemoryMB: 1024}}}}}, "node.cpu_mhz"},
		{"capacity node class", Config{Orchestrator: &leader.OrchestratorConfig{PluginDir: "/p", Capacity: []leader.CapacityConfig{
			{Name: "aws", Driver: "aws-asg", Classes: []string{"cloud"}, Max: 3, Node: &leader.NodeConfig{CPUMHz: 8000, MemoryMB: 1024, Class: "gpu"}}}}}, "node.class"},
		{"prometheus address", Config{Prometheus: &backfill.Config{Address: "prometheus:9090"}}, "prometheus.address"},
		{"prometheus history", Config{Prometheus: &backfill.Config{Address: "http://p:9090", History: "two weeks"}}, "prometheus.history"},
		{"max groups", Config{Telemetry: &leader.TelemetryConfig{MaxGroups: new(int)}}, "telemetry.max_groups"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.Resolve(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestCapacityNodeBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.hcl")
	src := `orchestrator {
  plugin_dir = "/opt/plugins"
  capacity "cloud" {
    driver  = "aws-asg"
    classes = ["provider-ssd-standard-25g"]
    max     = 8
    node {
      cpu_mhz    = 10000
      memory_mb  = 16384
      node_class = "cloud"
      meta       = { "foresight.storage" = "ssd" }
    }
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	n := s.Orchestrator.Capacity[0].Node
	if s.Orchestrator.Capacity[0].Min != 0 || n == nil || n.CPUMHz != 10000 || n.MemoryMB != 16384 || n.NodeClass != "cloud" || n.Meta["foresight.storage"] != "ssd" {
		t.Fatalf("capacity %+v, node %+v", s.Orchestrator.Capacity[0], n)
	}
}

func TestLoadConfigNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte("node_id = \"n1\"\nsample_interval = \"5s\"\nleader {\n  lock_delay = \"2s\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Resolve()
	if err != nil || s.NodeID != "n1" || s.SampleInterval != 5*time.Second || s.LockDelay != 2*time.Second {
		t.Fatalf("resolved %+v, %v", s, err)
	}
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("node_id = \"n1\"\ncolour = \"red\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "bad.hcl:2") {
		t.Fatalf("got %v, want the file and line of the unknown setting", err)
	}
}
