package agent

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/plugin/target"
)

// TestScaleWaitsForTheJobsDeployment: the user rolls out a new image of an
// enforced group. While Nomad deploys it, the group is not ready to scale
// (for the leader's API and for foresight-target, so the autoscaler leaves
// it alone), and a scale request is held, naming the deployment, with
// nothing written to the job. Once the rollout is done, the same request is
// written.
func TestScaleWaitsForTheJobsDeployment(t *testing.T) {
	agents, cluster, stop := startTestCluster(t, 1, 0, func(c *Config) {
		c.Orchestrator = &leader.OrchestratorConfig{Mode: "enforce", DecisionInterval: "1h"}
	})
	defer stop()
	a := agents[0]
	addr := a.HTTPAddr()
	wait.Until(t, time.Minute, "a leader", func() bool { return a.term.Load() != nil })

	job, _, err := a.nomad.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.TaskGroups[0].Tasks[0].Config["image"] = "app:2"
	if _, _, err := a.nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	dep, _, err := a.nomad.Jobs().LatestDeployment("app", nil)
	if err != nil || dep == nil || dep.Status != nomadapi.DeploymentStatusRunning {
		t.Fatalf("the user's deployment: %+v, %v", dep, err)
	}

	st := scaleStatusOf(t, addr)
	if st.Ready || st.Deployment == nil || st.Deployment.ID != dep.ID || st.Deployment.Status != nomadapi.DeploymentStatusRunning {
		t.Fatalf("status during the deployment: %+v, want not ready, naming deployment %s", st, dep.ID)
	}
	plugin := target.New(hclog.NewNullLogger())
	cfg := map[string]string{"address": "http://" + addr, "job": "app", "group": "app"}
	ts, err := plugin.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Ready || !strings.Contains(ts.Meta["nomad_autoscaler.target.foresight.deployment"], dep.ID[:8]) {
		t.Fatalf("foresight-target status during the deployment: %+v", ts)
	}

	code, res, raw := scaleCall(t, addr, `{"count": 3, "reason": "cpu above target"}`)
	if code != http.StatusOK || res.Written || res.Deployment == nil || res.Deployment.ID != dep.ID ||
		!strings.Contains(res.Held, "deployment "+dep.ID[:8]) || !strings.Contains(res.Held, "is running") {
		t.Fatalf("scale during the deployment: HTTP %d %s", code, raw)
	}
	var noop *sdk.TargetScalingNoOpError
	if err := plugin.Scale(sdk.ScalingAction{Count: 3, Reason: "cpu above target"}, cfg); !errors.As(err, &noop) {
		t.Fatalf("foresight-target scale during the deployment: %v, want the autoscaler's no-op error", err)
	}
	after, _, err := a.nomad.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *after.Version != *job.Version+1 || *after.TaskGroups[0].Count != 2 {
		t.Fatalf("the job was written during the deployment: version %d, count %d", *after.Version, *after.TaskGroups[0].Count)
	}

	cluster.Advance(2 * time.Minute)
	if st := scaleStatusOf(t, addr); !st.Ready || st.Deployment != nil {
		t.Fatalf("status after the deployment: %+v", st)
	}
	code, res, raw = scaleCall(t, addr, `{"count": 3, "reason": "cpu above target"}`)
	if code != http.StatusOK || !res.Written || res.Deployment != nil {
		t.Fatalf("scale after the deployment: HTTP %d %s", code, raw)
	}
	if after, _, _ := a.nomad.Jobs().Info("app", nil); *after.TaskGroups[0].Count != 3 || after.TaskGroups[0].Tasks[0].Config["image"] != "app:2" {
		t.Fatalf("written job: count %d image %v", *after.TaskGroups[0].Count, after.TaskGroups[0].Tasks[0].Config["image"])
	}
}
