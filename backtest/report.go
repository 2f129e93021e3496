package backtest

import (
	"encoding/json"
	"fmt"
	"io"
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
}

// Goals checks predictive against reactive and static, when the report has
// them.
func (r *Report) Goals() []Goal {
	p, ok := r.Result(PolicyPredictive)
	if !ok {
		return nil
	}
	var out []Goal
	if re, ok := r.Result(PolicyReactive); ok {
		cut := reduction(p.ViolationMinutes, re.ViolationMinutes)
		cost := ratio(p.ResourceHours, re.ResourceHours)
		g := Goal{Name: "vs reactive", Met: cut >= GoalViolationCut && cost <= GoalReactiveCost}
		g.Detail = fmt.Sprintf("violations %d vs %d (%+.0f%%, want ≤ -%.0f%%), resource-hours ×%.2f (want ≤ ×%.2f)",
			p.ViolationMinutes, re.ViolationMinutes, -100*cut, 100*GoalViolationCut, cost, GoalReactiveCost)
		out = append(out, g)
	}
	if st, ok := r.Result(PolicyStatic); ok {
		cut := 1 - ratio(p.ResourceHours, st.ResourceHours)
		viol := float64(p.ViolationMinutes) <= GoalStaticViolations*float64(st.ViolationMinutes)
		g := Goal{Name: "vs static", Met: cut >= GoalCostCut && viol}
		g.Detail = fmt.Sprintf("resource-hours %+.0f%% (want ≤ -%.0f%%), violations %d vs %d (want ≤ ×%.0f)",
			-100*cut, 100*GoalCostCut, p.ViolationMinutes, st.ViolationMinutes, GoalStaticViolations)
		out = append(out, g)
	}
	return out
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
	}
	all := make([]out, len(reps))
	for i, r := range reps {
		all[i] = out{r, r.Goals()}
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
		for _, g := range r.Goals() {
			verdict := "met"
			if !g.Met {
				verdict = "MISSED"
			}
			if _, err := fmt.Fprintf(w, "%s %s: %s: %s\n", r.Trace, g.Name, verdict, g.Detail); err != nil {
				return err
			}
		}
	}
	return nil
}
