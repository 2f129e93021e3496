package backtest

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Plot geometry, in SVG user units.
const (
	plotWidth   = 1200
	plotHeight  = 420
	plotLeft    = 60
	plotRight   = 20
	plotTop     = 40
	plotBottom  = 50
	maxBuckets  = 1200
	legendWidth = 150
)

// policyColors are the lines of each policy's ready capacity.
var policyColors = map[string]string{
	PolicyPredictive: "#1b7837",
	PolicyReactive:   "#d6604d",
	PolicyStatic:     "#4393c3",
}

// WritePlot draws a report's series as an SVG: the demand, each policy's
// ready capacity (running allocations), and the predictive policy's forecast
// band (lower to upper quantile, lead-time minutes ahead), all in
// allocations, over the whole trace with the warm-up shaded. Long traces
// are drawn in at most 1200 buckets: the demand and the band's upper edge
// at their bucket maximum, capacity and the band's lower edge at their
// minimum, so that no shortfall is smoothed away.
func WritePlot(w io.Writer, r *Report) error {
	s := r.Series
	if s == nil || len(s.Demand) == 0 {
		return errors.New("plot: the report has no series (run with Options.Series)")
	}
	n := len(s.Demand)
	per := (n + maxBuckets - 1) / maxBuckets
	buckets := (n + per - 1) / per
	agg := func(x []float64, pick func(a, b float64) float64) []float64 {
		if x == nil {
			return nil
		}
		out := make([]float64, buckets)
		for b := range out {
			v := math.NaN()
			for i := b * per; i < min(n, (b+1)*per); i++ {
				switch {
				case math.IsNaN(x[i]):
				case math.IsNaN(v):
					v = x[i]
				default:
					v = pick(v, x[i])
				}
			}
			out[b] = v
		}
		return out
	}
	demand := agg(s.Demand, math.Max)
	upper, lower := agg(s.Upper, math.Max), agg(s.Lower, math.Min)
	top := 1.0
	for _, x := range [][]float64{demand, upper} {
		for _, v := range x {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	ready := map[string][]float64{}
	for _, name := range PolicyNames {
		if x, ok := s.Ready[name]; ok {
			ready[name] = agg(x, math.Min)
			for _, v := range ready[name] {
				top = math.Max(top, v)
			}
		}
	}
	top = niceCeil(top * 1.05)

	iw := float64(plotWidth - plotLeft - plotRight - legendWidth)
	ih := float64(plotHeight - plotTop - plotBottom)
	x := func(b int) float64 { return plotLeft + iw*float64(b)/float64(max(1, buckets-1)) }
	y := func(v float64) float64 { return plotTop + ih*(1-v/top) }

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="22" font-size="15">%s: demand and ready capacity (allocations of %d MHz)</text>`+"\n", plotLeft, html.EscapeString(r.Trace), AllocMHz)
	// Warm-up, not scored.
	if s.Scored > 0 {
		p(`<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#eeeeee"/>`+"\n", x(0), plotTop, x(s.Scored/per)-x(0), ih)
		p(`<text x="%.1f" y="%d" fill="#777">warm-up</text>`+"\n", x(0)+4, plotTop+14)
	}
	// Axes and grid.
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, plotLeft+iw, y(v), y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", plotLeft-6, y(v)+4, v)
	}
	days := float64(n) / (24 * 60)
	tick := 1
	for float64(tick)*10 < days {
		tick *= 2
	}
	for d := 0; float64(d) <= days; d += tick {
		b := d * 24 * 60 / per
		p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(b), plotHeight-plotBottom+18,
			s.Start.Add(time.Duration(d)*24*time.Hour).Format("Jan 2"))
	}
	p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">time (UTC)</text>`+"\n", plotLeft+iw/2, plotHeight-10)
	// Forecast band.
	if upper != nil {
		p(`<path d="%s" fill="#a6dba0" fill-opacity="0.45" stroke="none"/>`+"\n", bandPath(lower, upper, x, y))
	}
	p(`<polyline points="%s" fill="none" stroke="#222" stroke-width="1"/>`+"\n", linePoints(demand, x, y))
	for _, name := range PolicyNames {
		if v, ok := ready[name]; ok {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.2" stroke-opacity="0.9"/>`+"\n", linePoints(v, x, y), policyColors[name])
		}
	}
	// Legend.
	lx := plotWidth - plotRight - legendWidth + 15
	items := [][2]string{{"demand", "#222"}}
	for _, name := range PolicyNames {
		if _, ok := ready[name]; ok {
			items = append(items, [2]string{name + " ready", policyColors[name]})
		}
	}
	for i, it := range items {
		ly := plotTop + 10 + 18*i
		p(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", lx, lx+20, ly, ly, it[1])
		p(`<text x="%d" y="%d">%s</text>`+"\n", lx+26, ly+4, it[0])
	}
	if upper != nil {
		ly := plotTop + 10 + 18*len(items)
		p(`<rect x="%d" y="%d" width="20" height="10" fill="#a6dba0" fill-opacity="0.45"/>`+"\n", lx, ly-5)
		p(`<text x="%d" y="%d">forecast band</text>`+"\n", lx+26, ly+4)
	}
	p("</svg>\n")
	return bw.Flush()
}

// linePoints is a polyline's points, skipping NaN.
func linePoints(v []float64, x func(int) float64, y func(float64) float64) string {
	var b strings.Builder
	for i, f := range v {
		if math.IsNaN(f) {
			continue
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(f))
	}
	return strings.TrimSpace(b.String())
}

// bandPath is a closed path along upper and back along lower, one path per
// run of buckets where both are known.
func bandPath(lower, upper []float64, x func(int) float64, y func(float64) float64) string {
	var b strings.Builder
	i := 0
	for i < len(upper) {
		for i < len(upper) && (math.IsNaN(upper[i]) || math.IsNaN(lower[i])) {
			i++
		}
		j := i
		for j < len(upper) && !math.IsNaN(upper[j]) && !math.IsNaN(lower[j]) {
			j++
		}
		if j > i {
			fmt.Fprintf(&b, "M%.1f,%.1f", x(i), y(upper[i]))
			for k := i + 1; k < j; k++ {
				fmt.Fprintf(&b, " L%.1f,%.1f", x(k), y(upper[k]))
			}
			for k := j - 1; k >= i; k-- {
				fmt.Fprintf(&b, " L%.1f,%.1f", x(k), y(math.Max(0, lower[k])))
			}
			b.WriteString(" Z ")
		}
		i = j
	}
	return strings.TrimSpace(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
