package simtarget

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/sim/simtest"
)

func TestSetConfigAddress(t *testing.T) {
	p := New(hclog.NewNullLogger())
	t.Setenv("NOMAD_ADDR", "")
	for _, c := range []struct {
		config map[string]string
		env    string
		want   string
	}{
		{nil, "", DefaultAddress},
		{nil, "http://10.0.0.1:4646", "http://10.0.0.1:4646"},
		{map[string]string{"nomad_address": "http://inherited:4646/"}, "http://10.0.0.1:4646", "http://inherited:4646"},
		{map[string]string{"address": "https://sim:4646", "nomad_address": "http://inherited:4646"}, "", "https://sim:4646"},
	} {
		t.Setenv("NOMAD_ADDR", c.env)
		if err := p.SetConfig(c.config); err != nil {
			t.Fatal(err)
		}
		if p.addr != c.want {
			t.Errorf("SetConfig(%v) with NOMAD_ADDR=%q: address %q, want %q", c.config, c.env, p.addr, c.want)
		}
	}
	if err := p.SetConfig(map[string]string{"address": "sim:4646"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("bad address: %v", err)
	}
	if p.addr != "https://sim:4646" {
		t.Fatalf("a refused config changed the address to %q", p.addr)
	}
}

func TestStatusAndScale(t *testing.T) {
	srv := simtest.Start(t, "../../orchestrator/testdata/capacity.hcl")
	p := New(hclog.NewNullLogger())
	if _, err := p.Status(map[string]string{"node_group": "cloud"}); err == nil || !strings.Contains(err.Error(), "SetConfig") {
		t.Fatalf("status before SetConfig: %v", err)
	}
	if err := p.SetConfig(map[string]string{"address": srv.URL}); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"node_group": "cloud"}
	if _, err := p.Status(nil); err == nil || !strings.Contains(err.Error(), "node_group not found") {
		t.Fatalf("status without node_group: %v", err)
	}
	st, err := p.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 1 || !st.Ready || st.Meta[sdk.TargetStatusMetaKeyLastEvent] != "" {
		t.Fatalf("initial status %+v", st)
	}
	dry := sdk.ScalingAction{Count: 3}
	dry.SetDryRun()
	if err := p.Scale(dry, cfg); err != nil {
		t.Fatal(err)
	}
	if g, _ := srv.Cluster.NodeGroup("cloud"); g.Desired != 1 {
		t.Fatalf("a dry run resized the group to %d", g.Desired)
	}
	if err := p.Scale(sdk.ScalingAction{Count: 9}, cfg); err == nil || !strings.Contains(err.Error(), "outside 1..4") {
		t.Fatalf("scale beyond max: %v", err)
	}
	if err := p.Scale(sdk.ScalingAction{Count: 2}, cfg); err != nil {
		t.Fatal(err)
	}
	if st, _ = p.Status(cfg); st.Count != 2 || st.Ready {
		t.Fatalf("status while provisioning %+v", st)
	}
	srv.Cluster.Advance(srv.Config.NodeGroups[1].ProvisionDelay)
	if st, _ = p.Status(cfg); st.Count != 2 || !st.Ready || st.Meta[sdk.TargetStatusMetaKeyLastEvent] == "" {
		t.Fatalf("status once provisioned %+v", st)
	}
	if err := p.Scale(sdk.ScalingAction{Count: 1}, cfg); err != nil {
		t.Fatal(err)
	}
	if g, _ := srv.Cluster.NodeGroup("cloud"); g.Desired != 1 || g.Ready != 1 {
		t.Fatalf("after scale-in: %+v", g)
	}
}
