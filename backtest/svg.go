package backtest

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"time"

	"github.com/foresight-nomad/foresight/internal/svgchart"
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
	sc := svgchart.Scale{
		Left: plotLeft, Top: plotTop,
		Width: plotWidth - plotLeft - plotRight - legendWidth, Height: plotHeight - plotTop - plotBottom,
		X0: 0, X1: float64(max(1, buckets-1)), Y0: 0, Y1: svgchart.NiceCeil(top * 1.05),
	}
	iw, ih := sc.Width, sc.Height
	x := func(b int) float64 { return sc.X(float64(b)) }

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
	for _, v := range sc.Ticks(4) {
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, plotLeft+iw, sc.Y(v), sc.Y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", plotLeft-6, sc.Y(v)+4, v)
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
		floor := make([]float64, len(lower))
		for i, v := range lower {
			floor[i] = math.Max(0, v) // NaN stays NaN: a gap
		}
		p(`<path class="band" d="%s" fill="#a6dba0" fill-opacity="0.45" stroke="none"/>`+"\n", svgchart.Band(sc, points(floor), points(upper)))
	}
	line := func(v []float64) string { d, _ := svgchart.Line(sc, points(v)); return d }
	p(`<path class="line" d="%s" fill="none" stroke="#222" stroke-width="1"/>`+"\n", line(demand))
	for _, name := range PolicyNames {
		if v, ok := ready[name]; ok {
			p(`<path class="line" d="%s" fill="none" stroke="%s" stroke-width="1.2" stroke-opacity="0.9"/>`+"\n", line(v), policyColors[name])
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

// points puts buckets in the chart kit's data units: x is the bucket.
func points(v []float64) []svgchart.Point {
	out := make([]svgchart.Point, len(v))
	for i, f := range v {
		out[i] = svgchart.Point{X: float64(i), Y: f}
	}
	return out
}
