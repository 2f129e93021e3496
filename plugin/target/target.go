package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/plugin/internal/leaderconf"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	astarget "github.com/hashicorp/nomad-autoscaler/plugins/target"
	"github.com/hashicorp/nomad-autoscaler/sdk"
)

// TargetName is foresight-target's plugin name.
const TargetName = "foresight-target"

// Target config keys. In a job's scaling stanza the Nomad policy source
// fills in Namespace, Job and Group, which are read when these are absent.
const (
	TargetNamespace = "namespace"
	TargetJob       = "job"
	TargetGroup     = "group"
)

// Meta keys of the target's status.
const (
	// metaKeyMode reports the group's Foresight mode.
	metaKeyMode = "nomad_autoscaler.target.foresight.mode"
	// metaKeyHold reports why the group's Foresight policy cannot be read.
	metaKeyHold = "nomad_autoscaler.target.foresight.hold"
	// metaKeyDeployment names the job's active deployment, why the target
	// is not ready.
	metaKeyDeployment = "nomad_autoscaler.target.foresight.deployment"
)

// Target is foresight-target: it hands the autoscaler's scaling actions
// for a group to the Foresight leader, which decides where the instances
// go and makes room for them, and reports the group's count and readiness
// from the leader, with the time of the last count change (Foresight's or
// Nomad's) so that the autoscaler's cooldowns see Foresight's own changes.
type Target struct {
	log     hclog.Logger
	conf    map[string]string // the plugin block's config, under each policy's
	leaders leaderconf.Cache
}

var _ astarget.Target = (*Target)(nil)

// New returns foresight-target.
func New(log hclog.Logger) *Target { return &Target{log: log} }

// PluginInfo satisfies base.Base.
func (t *Target) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: TargetName, PluginType: sdk.PluginTypeTarget}, nil
}

// SetConfig satisfies base.Base: the plugin block's config (typically the
// leader's address) is the default for every policy's target config.
func (t *Target) SetConfig(config map[string]string) error {
	if _, err := leaderconf.New(config); err != nil {
		return err
	}
	t.conf = config
	return nil
}

// resolve merges a policy's target config over the plugin's and returns
// the leader client and the group it names.
func (t *Target) resolve(config map[string]string) (*leaderapi.Client, string, error) {
	merged := map[string]string{}
	for k, v := range t.conf {
		merged[k] = v
	}
	for k, v := range config {
		merged[k] = v
	}
	pick := func(key, nomadKey, def string) string {
		if v := merged[key]; v != "" {
			return v
		}
		if v := merged[nomadKey]; v != "" {
			return v
		}
		return def
	}
	ns := pick(TargetNamespace, sdk.TargetConfigKeyNamespace, "default")
	job := pick(TargetJob, sdk.TargetConfigKeyJob, "")
	group := pick(TargetGroup, sdk.TargetConfigKeyTaskGroup, "")
	if job == "" || group == "" {
		return nil, "", fmt.Errorf("foresight-target needs `%s` and `%s` in the target config", TargetJob, TargetGroup)
	}
	g := ns + "/" + job + "/" + group
	if _, err := telemetry.ParseGroup(g); err != nil {
		return nil, "", err
	}
	l, err := t.leaders.Get(merged)
	if err != nil {
		return nil, "", err
	}
	return l, g, nil
}

// Status satisfies target.Controller.
func (t *Target) Status(config map[string]string) (*sdk.TargetStatus, error) {
	l, g, err := t.resolve(config)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderconf.Timeout)
	defer cancel()
	st, err := l.ScaleStatus(ctx, g)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", g, err)
	}
	out := &sdk.TargetStatus{Ready: st.Ready, Count: st.Count, Meta: map[string]string{metaKeyMode: st.Mode}}
	if st.Hold != "" {
		out.Meta[metaKeyHold] = st.Hold
	}
	if st.Deployment != nil {
		out.Meta[metaKeyDeployment] = st.Deployment.String()
	}
	if st.LastEvent > 0 {
		out.Meta[sdk.TargetStatusMetaKeyLastEvent] = strconv.FormatInt(st.LastEvent, 10)
	}
	return out, nil
}

// Scale satisfies target.Controller. When the leader does not write the
// count (the group is in recommend mode, or Foresight is paused), Scale
// logs the leader's reasons and returns nil: a no-op, not an error. When
// the job's deployment held it, Scale says so with the autoscaler's no-op
// error, as its Nomad target does for Nomad's refusal, so that the policy
// is not put in cooldown for a count that was never written.
func (t *Target) Scale(action sdk.ScalingAction, config map[string]string) error {
	l, g, err := t.resolve(config)
	if err != nil {
		return err
	}
	if action.Count == sdk.StrategyActionMetaValueDryRunCount {
		t.log.Info("dry run: nothing handed to the leader", "group", g, "reason", action.Reason)
		return nil
	}
	if action.Count < 0 {
		return fmt.Errorf("scale %s: count %d is negative", g, action.Count)
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderconf.Timeout)
	defer cancel()
	res, err := l.Scale(ctx, g, leaderapi.ScaleRequest{Count: &action.Count, Reason: action.Reason, Error: action.Error, Meta: action.Meta})
	if err != nil {
		var se *leaderapi.StatusError
		if errors.As(err, &se) {
			return fmt.Errorf("scale %s to %d: %s", g, action.Count, se.Msg)
		}
		return fmt.Errorf("scale %s to %d: %w", g, action.Count, err)
	}
	if !res.Written && res.Deployment != nil {
		return sdk.NewTargetScalingNoOpError("skipping scaling group %s: %s", g, res.Deployment)
	}
	if !res.Written {
		t.log.Info("leader did not write the count", "group", g, "count", action.Count, "mode", res.Mode,
			"held", res.Held, "reasons", strings.Join(res.Reasons, "; "))
		return nil
	}
	t.log.Info("scaled", "group", g, "from", res.CountBefore, "to", res.Count, "mode", res.Mode,
		"reasons", strings.Join(res.Reasons, "; "))
	return nil
}
