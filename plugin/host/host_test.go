package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/plugin/simtarget"
	"github.com/foresight-nomad/foresight/plugin/simtarget/simtargettest"
	"github.com/foresight-nomad/foresight/sim/simtest"
)

// envServeStrategy makes this test binary serve a strategy plugin instead
// of running tests, so the host can be shown a plugin of the wrong type.
const envServeStrategy = "FORESIGHT_HOST_TEST_SERVE_STRATEGY"

func TestMain(m *testing.M) {
	if name := os.Getenv(envServeStrategy); name != "" {
		plugins.Serve(func(hclog.Logger) interface{} { return strategy{name} })
		return
	}
	os.Exit(m.Run())
}

// strategy is a strategy plugin that does nothing: all the host may do
// with it is refuse it.
type strategy struct{ name string }

func (s strategy) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: s.name, PluginType: sdk.PluginTypeStrategy}, nil
}
func (strategy) SetConfig(map[string]string) error { return nil }
func (strategy) Run(e *sdk.ScalingCheckEvaluation, _ int64) (*sdk.ScalingCheckEvaluation, error) {
	return e, nil
}

func logger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn, Name: t.Name()})
}

func TestHostRunsSimTarget(t *testing.T) {
	srv := simtest.Start(t, "../../orchestrator/testdata/capacity.hcl")
	dir := simtargettest.Build(t)
	h := New(dir, nil, logger(t))
	t.Cleanup(h.Close)

	p, err := h.Open("cloud", simtarget.PluginName, map[string]string{"address": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"node_group": "cloud"}
	st, err := p.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 1 || !st.Ready {
		t.Fatalf("status = %+v, want count 1, ready", st)
	}

	if err := p.Scale(sdk.ScalingAction{Count: 3, Direction: sdk.ScaleDirectionUp, Reason: "test"}, cfg); err != nil {
		t.Fatal(err)
	}
	st, err = p.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 3 || st.Ready {
		t.Fatalf("status after scale = %+v, want count 3, not ready while provisioning", st)
	}
	srv.Cluster.Advance(srv.Config.NodeGroups[1].ProvisionDelay)
	st, err = p.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := srv.Cluster.Now().UnixNano()
	if !st.Ready || st.Meta[sdk.TargetStatusMetaKeyLastEvent] != itoa(want) {
		t.Fatalf("status after provisioning = %+v, want ready with last event %d", st, want)
	}

	// A dead plugin process is started again on the next call.
	p.mu.Lock()
	p.client.Kill()
	p.mu.Unlock()
	if st, err = p.Status(cfg); err != nil || st.Count != 3 {
		t.Fatalf("status after the plugin died = %+v, %v", st, err)
	}

	// Errors from the plugin come back as they are.
	if _, err := p.Status(map[string]string{"node_group": "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown node group: err = %v", err)
	}
	if err := p.Scale(sdk.ScalingAction{Count: 2}, map[string]string{"node_group": "rack"}); err == nil || !strings.Contains(err.Error(), "external") {
		t.Fatalf("scaling an external group: err = %v", err)
	}

	h.Close()
	if _, err := p.Status(cfg); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("status after Close: err = %v", err)
	}
}

func TestHostRefuses(t *testing.T) {
	dir := simtargettest.Build(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "fixed-value")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, simtarget.PluginName), filepath.Join(dir, "aws-asg")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envServeStrategy, "fixed-value")
	h := New(dir, nil, logger(t))
	t.Cleanup(h.Close)

	for _, c := range []struct {
		name, driver string
		config       map[string]string
		want         string
	}{
		{"missing", "gce-mig", nil, "no plugin binary gce-mig"},
		{"path", "../gce-mig", nil, "not a path"},
		{"not executable", "plain", nil, "not executable"},
		{"strategy", "fixed-value", nil, "is a strategy plugin, not a target plugin"},
		{"renamed", "aws-asg", nil, `calls itself "foresight-sim-target", not "aws-asg"`},
		{"bad config", simtarget.PluginName, map[string]string{"address": "ftp://sim"}, "refused its config"},
		{"bad inherit", simtarget.PluginName, map[string]string{plugins.ConfigKeyNomadConfigInherit: "maybe"}, "not a boolean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := h.Open(c.name, c.driver, c.config)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open(%q) = %v, %v; want an error containing %q", c.driver, p, err, c.want)
			}
		})
	}
	h.mu.Lock()
	n := len(h.plugins)
	h.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d plugins kept after failed opens", n)
	}
}

func TestInheritNomad(t *testing.T) {
	h := New(t.TempDir(), nil, nil)
	h.nomad = nomadConfig(t, "http://nomad.example:4646", "s3cret")
	cfg, err := h.pluginConfig(map[string]string{"nomad_token": "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg["nomad_address"] != "http://nomad.example:4646" || cfg["nomad_token"] != "mine" {
		t.Fatalf("merged config = %v: want the host's address and the plugin's own token", cfg)
	}
	cfg, err = h.pluginConfig(map[string]string{plugins.ConfigKeyNomadConfigInherit: "false"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg["nomad_address"]; ok {
		t.Fatalf("config with nomad_config_inherit = false got %v", cfg)
	}
}
