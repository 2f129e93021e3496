package backtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// The goals Foresight is held to on every trace.
const (
	// GoalViolationCut: at least this much fewer violation minutes than
	// reactive…
	GoalViolationCut = 0.5
	// …at no more than this many times its resource-hours.
	GoalReactiveCost = 1.05
	// GoalCostCut: at least this much fewer resource-hours than static…
	GoalCostCut = 0.3
	// …with no more than this many times its violation minutes.
	GoalStaticViolations = 2.0
)

// Goal is one of the goals checked on a report.
type Goal struct {
	// Name says which comparison: "vs reactive" or "vs static".
	Name string `json:"name"`
	Met  bool   `json:"met"`
	// Detail says what was measured, and which part missed.
	Detail string `json:"detail"`
	// Hindsight is what perfect foresight could do within the goal, when
	// the report was measured by Run.
	Hindsight *Bound `json:"hindsight,omitempty"`
}

// Bound is the least resource-hours any policy could spend within a goal's
// violation minutes (a policy with perfect foresight at 100 %
// utilisation; see hindsight), and whether that fits the goal's
// resource-hours. Possible false means no policy can meet the goal.
type Bound struct {
	ViolationMinutes int     `json:"violation_minutes"`
	ResourceHours    float64 `json:"resource_hours"`
	MaxResourceHours float64 `json:"max_resource_hours"`
	Possible         bool    `json:"possible"`
}

func (r *Report) bound(violations int, hours float64) *Bound {
	if r.hind == nil {
		return nil
	}
	least := r.hind.hours(violations)
	return &Bound{ViolationMinutes: violations, ResourceHours: least, MaxResourceHours: hours, Possible: least <= hours}
}

// Possible is the bound on meeting both goals at once, when the report
// has reactive and static results and was measured by Run.
func (r *Report) Possible() *Bound {
	re, ok1 := r.Result(PolicyReactive)
	st, ok2 := r.Result(PolicyStatic)
	if !ok1 || !ok2 {
		return nil
	}
	v := min(reactiveBudget(re), staticBudget(st))
	return r.bound(v, math.Min(GoalReactiveCost*re.ResourceHours, (1-GoalCostCut)*st.ResourceHours))
}

// reactiveBudget and staticBudget are the violation minutes each goal
// allows.
func reactiveBudget(re Result) int {
	return int(math.Floor((1 - GoalViolationCut) * float64(re.ViolationMinutes)))
}

func staticBudget(st Result) int {
	return int(math.Floor(GoalStaticViolations * float64(st.ViolationMinutes)))
}

// The goals' names.
const (
	goalReactive = "vs reactive"
	goalStatic   = "vs static"
)

// Goals checks predictive against reactive and static, when the report has
// them.
func (r *Report) Goals() []Goal {
	p, ok := r.Result(PolicyPredictive)
	if !ok {
		return nil
	}
	return r.goalsOf(p)
}

// goalsOf checks p against the report's reactive and static results.
func (r *Report) goalsOf(p Result) []Goal {
	var out []Goal
	if re, ok := r.Result(PolicyReactive); ok {
		cut := reduction(p.ViolationMinutes, re.ViolationMinutes)
		cost := ratio(p.ResourceHours, re.ResourceHours)
		g := Goal{Name: goalReactive, Met: cut >= GoalViolationCut && cost <= GoalReactiveCost}
		g.Detail = fmt.Sprintf("violations %d vs %d (%+.0f%%, want ≤ -%.0f%%), resource-hours ×%.2f (want ≤ ×%.2f)",
			p.ViolationMinutes, re.ViolationMinutes, -100*cut, 100*GoalViolationCut, cost, GoalReactiveCost)
		g.Hindsight = r.bound(reactiveBudget(re), GoalReactiveCost*re.ResourceHours)
		g.Detail += g.Hindsight.String()
		out = append(out, g)
	}
	if st, ok := r.Result(PolicyStatic); ok {
		cut := 1 - ratio(p.ResourceHours, st.ResourceHours)
		viol := float64(p.ViolationMinutes) <= GoalStaticViolations*float64(st.ViolationMinutes)
		g := Goal{Name: goalStatic, Met: cut >= GoalCostCut && viol}
		g.Detail = fmt.Sprintf("resource-hours %+.0f%% (want ≤ -%.0f%%), violations %d vs %d (want ≤ ×%.0f)",
			-100*cut, 100*GoalCostCut, p.ViolationMinutes, st.ViolationMinutes, GoalStaticViolations)
		g.Hindsight = r.bound(staticBudget(st), (1-GoalCostCut)*st.ResourceHours)
		g.Detail += g.Hindsight.String()
		out = append(out, g)
	}
	return out
}

// verdict says whether a goal was met, as the table prints it.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// String says the bound in a goal's detail: nothing when there is none.
func (b *Bound) String() string {
	if b == nil {
		return ""
	}
	say := "possible"
	if !b.Possible {
		say = "impossible for any policy"
	}
	return fmt.Sprintf("; perfect foresight needs ≥ %.0f resource-hours within %d violation minutes, the goal allows %.0f: %s",
		b.ResourceHours, b.ViolationMinutes, b.MaxResourceHours, say)
}

// reduction is 1 − a/b; with b = 0 it is 1 when a is 0 too (nothing to
// cut, nothing added) and −∞-like (−1) otherwise.
func reduction(a, b int) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return -1
	}
	return 1 - float64(a)/float64(b)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 1
	}
	return a / b
}

// WriteJSON writes the reports as JSON: one object per trace, with one
// object per policy.
func WriteJSON(w io.Writer, reps []*Report) error {
	type out struct {
		*Report
		Goals []Goal `json:"goals,omitempty"`
		// Both is what perfect foresight could do within both goals.
		Both *Bound `json:"both_goals_hindsight,omitempty"`
	}
	all := make([]out, len(reps))
	for i, r := range reps {
		all[i] = out{r, r.Goals(), r.Possible()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(all) == 1 {
		return enc.Encode(all[0])
	}
	return enc.Encode(all)
}

// WriteTable writes the reports as an aligned table, one row per trace and
// policy, then whether each goal was met.
func WriteTable(w io.Writer, reps []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\tpolicy\tviolation min\tunmet %\tresource-h\tactions\tmean util\tprovider node-h\t")
	for _, r := range reps {
		for _, res := range r.Results {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.0f\t%d\t%.2f\t%.0f\t\n", r.Trace, res.Policy, res.ViolationMinutes,
				res.UnmetDemandPct, res.ResourceHours, res.ScalingActions, res.MeanUtilization, res.ProviderNodeHours)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range reps {
		if r.Reactive != "" {
			if _, err := fmt.Fprintf(w, "reactive: %s\n", r.Reactive); err != nil {
				return err
			}
			break
		}
	}
	for _, r := range reps {
		for _, t := range r.Sweep {
			mark := ""
			if t.IsDefault {
				mark = " (default)"
			}
			if _, err := fmt.Fprintf(w, "%s sweep %v%s: %d violation minutes, %.0f resource-hours: vs reactive %s, vs static %s\n",
				r.Trace, t.Setting, mark, t.Result.ViolationMinutes, t.Result.ResourceHours, verdict(t.Reactive), verdict(t.Static)); err != nil {
				return err
			}
		}
		for _, g := range r.Goals() {
			if _, err := fmt.Fprintf(w, "%s %s: %s: %s\n", r.Trace, g.Name, verdict(g.Met), g.Detail); err != nil {
				return err
			}
		}
	}
	return nil
}
