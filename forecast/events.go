package forecast

import (
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2/hclsimple"
)

// Event is one named window of a calendar, for example a sale or a batch
// run. Its effect on the series is known (Factor or Add) or, when neither is
// set, learned from the earlier windows of the same name that lie inside the
// history.
type Event struct {
	Name  string
	Start time.Time
	End   time.Time
	// Factor multiplies the forecast inside the window (0 = not given).
	Factor float64
	// Add is added to the forecast inside the window (used when Factor is
	// not given; 0 with no Factor means "learn it").
	Add float64
	// Known is true when the calendar states the effect.
	Known bool
}

// Calendar is a set of scheduled events.
type Calendar struct {
	Events []Event
}

// calendarFile is the HCL layout of a calendar file:
//
//	event "black-friday" {
//	  start  = "2026-11-27T00:00:00Z"
//	  end    = "2026-11-28T00:00:00Z"
//	  factor = 1.8   # optional: multiply demand by 1.8
//	  # add  = 250   # optional: or add 250 to demand
//	}
type calendarFile struct {
	Events []struct {
		Name   string   `hcl:"name,label"`
		Start  string   `hcl:"start"`
		End    string   `hcl:"end"`
		Factor *float64 `hcl:"factor,optional"`
		Add    *float64 `hcl:"add,optional"`
	} `hcl:"event,block"`
}

// LoadCalendar reads a calendar from an HCL file.
func LoadCalendar(path string) (*Calendar, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return ParseCalendar(path, src)
}

// ParseCalendar parses a calendar from HCL source; filename is used in
// error messages and must end in .hcl.
func ParseCalendar(filename string, src []byte) (*Calendar, error) {
	var f calendarFile
	if err := hclsimple.Decode(filename, src, nil, &f); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	cal := &Calendar{}
	for _, e := range f.Events {
		s, err := ParseTime(e.Start)
		if err != nil {
			return nil, fmt.Errorf("events: %s: event %q: start: %w", filename, e.Name, err)
		}
		en, err := ParseTime(e.End)
		if err != nil {
			return nil, fmt.Errorf("events: %s: event %q: end: %w", filename, e.Name, err)
		}
		if !en.After(s) {
			return nil, fmt.Errorf("events: %s: event %q: end %s is not after start %s", filename, e.Name, e.End, e.Start)
		}
		ev := Event{Name: e.Name, Start: s, End: en}
		switch {
		case e.Factor != nil && e.Add != nil:
			return nil, fmt.Errorf("events: %s: event %q: give factor or add, not both", filename, e.Name)
		case e.Factor != nil:
			if !(*e.Factor > 0) || math.IsInf(*e.Factor, 0) {
				return nil, fmt.Errorf("events: %s: event %q: factor %v must be positive", filename, e.Name, *e.Factor)
			}
			ev.Factor, ev.Known = *e.Factor, true
		case e.Add != nil:
			ev.Add, ev.Known = *e.Add, true
		}
		cal.Events = append(cal.Events, ev)
	}
	sort.SliceStable(cal.Events, func(i, j int) bool { return cal.Events[i].Start.Before(cal.Events[j].Start) })
	return cal, nil
}

// eventEffect is the effect of one event name: y ↦ y·factor + add.
type eventEffect struct {
	factor, add float64
	learned     int // past windows it was learned from
}

// covers reports whether the cell starting at t overlaps the event window.
func (e Event) covers(t time.Time, step time.Duration) bool {
	return t.Before(e.End) && t.Add(step).After(e.Start)
}

// learnEffects estimates the effect of every event name without a stated
// effect from its past windows inside the grid: for each in-window cell t
// the baseline is the value one period earlier (a day when no season was
// found), skipping baselines inside any event; the effect is the ratio
// Σy/Σbaseline for positive series and the mean difference otherwise.
func learnEffects(cal *Calendar, g Grid, period int) map[string]eventEffect {
	out := map[string]eventEffect{}
	if period <= 0 {
		period = int(24 * time.Hour / g.Step)
	}
	inAny := func(t time.Time) bool {
		for _, e := range cal.Events {
			if e.covers(t, g.Step) {
				return true
			}
		}
		return false
	}
	positive := true
	for _, v := range g.Values {
		if v <= 0 {
			positive = false
			break
		}
	}
	type acc struct {
		sy, sb float64
		n      int
		wins   map[int]bool
	}
	accs := map[string]*acc{}
	for i, e := range cal.Events {
		if e.Known {
			continue
		}
		a := accs[e.Name]
		if a == nil {
			a = &acc{wins: map[int]bool{}}
			accs[e.Name] = a
		}
		for t := range g.Values {
			ct := g.Time(t)
			if !e.covers(ct, g.Step) || t-period < 0 || inAny(g.Time(t-period)) {
				continue
			}
			y, b := g.Values[t], g.Values[t-period]
			if math.IsNaN(y) || math.IsNaN(b) {
				continue
			}
			a.sy += y
			a.sb += b
			a.n++
			a.wins[i] = true
		}
	}
	for name, a := range accs {
		if a.n == 0 {
			continue
		}
		if positive && a.sb > 0 {
			out[name] = eventEffect{factor: a.sy / a.sb, learned: len(a.wins)}
		} else {
			out[name] = eventEffect{factor: 1, add: (a.sy - a.sb) / float64(a.n), learned: len(a.wins)}
		}
	}
	return out
}

// effectAt returns the combined effect of the events covering the cell at
// t, and the names involved.
func (cal *Calendar) effectAt(t time.Time, step time.Duration, learned map[string]eventEffect) (factor, add float64, names []string) {
	factor = 1
	for _, e := range cal.Events {
		if !e.covers(t, step) {
			continue
		}
		switch {
		case e.Known && e.Factor > 0:
			factor *= e.Factor
			add *= e.Factor
		case e.Known:
			add += e.Add
		default:
			eff, ok := learned[e.Name]
			if !ok {
				continue
			}
			factor *= eff.factor
			add = add*eff.factor + eff.add
		}
		names = append(names, e.Name)
	}
	return factor, add, names
}
