package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/internal/svgchart"
)

// Chart geometry, in SVG user units; the SVG scales to its container, so
// a chart's width in units sets how large its text reads.
const (
	chartWidth   = 640
	wideWidth    = 1000
	chartHeight  = 240
	marginLeft   = 64
	marginRight  = 16
	marginTop    = 14
	marginBottom = 30
	yTicks       = 4
	xTicks       = 6
)

// palette colours series in order: calm, distinguishable, print-friendly.
var palette = []string{"#1563ff", "#00a87e", "#c77700", "#8a63d2", "#d6336c", "#0a95b5", "#5c6773"}

// Color is the palette colour of the i-th series, for legends.
func Color(i int) string { return palette[i%len(palette)] }

// Point is one reading of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Series is one line of a chart. NaN values are gaps.
type Series struct {
	Name   string
	Points []Point
	// Dashed draws the line dashed (allocated next to capacity, say).
	Dashed bool
}

// LineChart is a time chart of one or more series sharing a unit.
type LineChart struct {
	// Unit formats the axis: "MHz", "bytes" or "" for plain numbers.
	Unit   string
	Series []Series
	// Empty is what the chart says without data; "No data yet" when unset.
	Empty string
}

// ForecastPoint is one step of a forecast: its quantiles.
type ForecastPoint struct {
	Time               time.Time
	P50, P90, P95, P99 float64
}

// BandChart is a group's usage against its forecast's quantile bands.
type BandChart struct {
	Unit     string
	Usage    []Point
	Forecast []ForecastPoint
	// Now marks where history ends and the forecast begins.
	Now time.Time
}

// Bar is one class's affinity score.
type Bar struct {
	Label string
	// Value is −100…100, Confidence 0…1.
	Value, Confidence float64
	// Note is shown on hover: the score's reason.
	Note string
}

// scale is the chart kit's mapping for a chart width units wide, times
// from t0 to t1 and values from 0 to top.
func scale(t0, t1 time.Time, top float64, width int) svgchart.Scale {
	return svgchart.Scale{
		Left: marginLeft, Top: marginTop,
		Width: float64(width - marginLeft - marginRight), Height: chartHeight - marginTop - marginBottom,
		X0: 0, X1: t1.Sub(t0).Seconds(), Y0: 0, Y1: top,
	}
}

// points puts a series in the kit's data units: seconds since t0.
func points(t0 time.Time, pts []Point) []svgchart.Point {
	out := make([]svgchart.Point, len(pts))
	for i, p := range pts {
		out[i] = svgchart.Point{X: p.Time.Sub(t0).Seconds(), Y: p.Value}
	}
	return out
}

// FormatValue prints v in unit ("MHz", "MB", "bytes", "B/s", "%" or "")
// compactly: "2.4 GHz", "512 MiB", "1.2k".
func FormatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch unit {
	case "MHz":
		if math.Abs(v) >= 1000 {
			return trimFloat(v/1000) + " GHz"
		}
		return trimFloat(v) + " MHz"
	case "MB":
		if math.Abs(v) >= 1024 {
			return trimFloat(v/1024) + " GiB"
		}
		return trimFloat(v) + " MiB"
	case "B/s":
		return FormatValue(v, "bytes") + "/s"
	case "%":
		return trimFloat(v) + "%"
	case "bytes":
		units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
		i := 0
		for math.Abs(v) >= 1024 && i < len(units)-1 {
			v /= 1024
			i++
		}
		return trimFloat(v) + " " + units[i]
	}
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// timeFormat labels a time axis spanning span.
func timeFormat(span time.Duration) string {
	switch {
	case span > 36*time.Hour:
		return "Jan 2 15:04"
	case span < 10*time.Minute:
		return "15:04:05"
	}
	return "15:04"
}

// frame draws the axes, grid and labels of a chart whose times run from t0
// to t1.
func frame(b *strings.Builder, s svgchart.Scale, t0, t1 time.Time, unit string) {
	right := s.Left + s.Width
	for _, v := range s.Ticks(yTicks) {
		y := s.Y(v)
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%.0f" y1="%.1f" y2="%.1f"/>`, marginLeft, right, y, y)
		fmt.Fprintf(b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, marginLeft-8, y+4, html.EscapeString(FormatValue(v, unit)))
	}
	span := t1.Sub(t0)
	layout := timeFormat(span)
	for i := 0; i <= xTicks && span > 0; i++ {
		at := span * time.Duration(i) / xTicks
		anchor := "middle"
		if i == 0 {
			anchor = "start"
		} else if i == xTicks {
			anchor = "end"
		}
		fmt.Fprintf(b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`, s.X(at.Seconds()), chartHeight-8, anchor, t0.Add(at).UTC().Format(layout))
	}
	fmt.Fprintf(b, `<line class="baseline" x1="%d" x2="%.0f" y1="%d" y2="%d"/>`, marginLeft, right, chartHeight-marginBottom, chartHeight-marginBottom)
}

func open(b *strings.Builder, kind, label string, width, height, points int) {
	fmt.Fprintf(b, `<svg class="chart %s" viewBox="0 0 %d %d" role="img" aria-label="%s" data-points="%d" preserveAspectRatio="xMidYMid meet">`,
		kind, width, height, html.EscapeString(label), points)
}

func empty(kind, label, msg string, width int) template.HTML {
	var b strings.Builder
	open(&b, kind+" empty", label, width, chartHeight/2, 0)
	fmt.Fprintf(&b, `<text class="nodata" x="%d" y="%d" text-anchor="middle">%s</text></svg>`, width/2, chartHeight/4+5, html.EscapeString(msg))
	return template.HTML(b.String())
}

// bounds is the time range and the largest value of the series.
func bounds(series []Series) (t0, t1 time.Time, top float64, n int) {
	for _, s := range series {
		for _, p := range s.Points {
			if !svgchart.Finite(p.Value) {
				continue
			}
			if n == 0 || p.Time.Before(t0) {
				t0 = p.Time
			}
			if n == 0 || p.Time.After(t1) {
				t1 = p.Time
			}
			top = math.Max(top, p.Value)
			n++
		}
	}
	return t0, t1, top, n
}

// SVG renders the chart; a chart without data says so.
func (c LineChart) SVG() template.HTML {
	t0, t1, top, n := bounds(c.Series)
	if n == 0 {
		msg := c.Empty
		if msg == "" {
			msg = "No data yet"
		}
		return empty("line", "no data", msg, chartWidth)
	}
	s := scale(t0, t1, svgchart.NiceCeil(top*1.05), chartWidth)
	var b strings.Builder
	open(&b, "line", "time chart", chartWidth, chartHeight, n)
	frame(&b, s, t0, t1, c.Unit)
	for i, ser := range c.Series {
		d, drawn := svgchart.Line(s, points(t0, ser.Points))
		if drawn == 0 {
			continue
		}
		dash := ""
		if ser.Dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(&b, `<path class="series" d="%s" stroke="%s"%s><title>%s</title></path>`, d, Color(i), dash, html.EscapeString(ser.Name))
	}
	b.WriteString("</svg>")
	return template.HTML(b.String())
}

// Banded tells whether the forecast has bands to draw: a quantile above
// its median somewhere (a fallback forecast has none).
func (c BandChart) Banded() bool {
	for _, f := range c.Forecast {
		if f.P99 > f.P50 {
			return true
		}
	}
	return false
}

// SVG renders the usage line over the forecast's bands: p50…p99 lightest,
// p50…p95, p50…p90 darkest, and the p50 line.
func (c BandChart) SVG() template.HTML {
	var p50, p90, p95, p99 []Point
	for _, f := range c.Forecast {
		p50 = append(p50, Point{f.Time, f.P50})
		p90 = append(p90, Point{f.Time, f.P90})
		p95 = append(p95, Point{f.Time, f.P95})
		p99 = append(p99, Point{f.Time, f.P99})
	}
	t0, t1, top, n := bounds([]Series{{Points: c.Usage}, {Points: p50}, {Points: p99}})
	if n == 0 {
		return empty("band", "no data", "No usage yet", wideWidth)
	}
	s := scale(t0, t1, svgchart.NiceCeil(top*1.05), wideWidth)
	var b strings.Builder
	open(&b, "band", "usage against forecast", wideWidth, chartHeight, n)
	frame(&b, s, t0, t1, c.Unit)
	lower := points(t0, p50)
	for _, band := range []struct {
		name    string
		upper   []Point
		opacity float64
	}{{"p50–p99", p99, 0.13}, {"p50–p95", p95, 0.2}, {"p50–p90", p90, 0.3}} {
		if d := svgchart.Band(s, lower, points(t0, band.upper)); d != "" {
			fmt.Fprintf(&b, `<path class="band" d="%s" fill="#1563ff" fill-opacity="%.2f"><title>forecast %s</title></path>`, d, band.opacity, band.name)
		}
	}
	if d, drawn := svgchart.Line(s, lower); drawn > 0 {
		fmt.Fprintf(&b, `<path class="series forecast" d="%s" stroke="#1563ff" stroke-dasharray="5 4"><title>forecast p50</title></path>`, d)
	}
	if d, drawn := svgchart.Line(s, points(t0, c.Usage)); drawn > 0 {
		fmt.Fprintf(&b, `<path class="series usage" d="%s" stroke="#1f2328"><title>usage</title></path>`, d)
	}
	if !c.Now.IsZero() && !c.Now.Before(t0) && !c.Now.After(t1) {
		x := s.X(c.Now.Sub(t0).Seconds())
		fmt.Fprintf(&b, `<line class="now" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="axis" x="%.1f" y="%d">now</text>`,
			x, x, marginTop, chartHeight-marginBottom, x+4, marginTop+10)
	}
	b.WriteString("</svg>")
	return template.HTML(b.String())
}

// Bar geometry.
const (
	barsWidth = 560
	barRow    = 30
	barLabel  = 190
	barValue  = 70
	barHeight = 16
)

// BarsSVG renders affinity scores as bars diverging from zero, more opaque
// the more confident.
func BarsSVG(bars []Bar) template.HTML {
	if len(bars) == 0 {
		return empty("bars", "no scores", "No classes scored yet", barsWidth)
	}
	height := len(bars)*barRow + 24
	mid := barLabel + (barsWidth-barLabel-barValue)/2
	half := float64(barsWidth-barLabel-barValue-12) / 2
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart bars" viewBox="0 0 %d %d" role="img" aria-label="affinity per class" data-points="%d">`, barsWidth, height, len(bars))
	fmt.Fprintf(&b, `<line class="baseline" x1="%d" x2="%d" y1="4" y2="%d"/>`, mid, mid, height-20)
	for _, tick := range []float64{-100, -50, 0, 50, 100} {
		x := float64(mid) + tick/100*half
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%g</text>`, x, height-4, tick)
	}
	for i, bar := range bars {
		y := 4 + i*barRow
		v := math.Max(-100, math.Min(100, bar.Value))
		w := math.Abs(v) / 100 * half
		x := float64(mid)
		color := "#00a87e"
		if v < 0 {
			x -= w
			color = "#d6336c"
		}
		opacity := 0.35 + 0.65*math.Max(0, math.Min(1, bar.Confidence))
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%s</text>`, barLabel-10, y+barHeight-3, html.EscapeString(bar.Label))
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s" fill-opacity="%.2f"><title>%s</title></rect>`,
			x, y, math.Max(w, 1), barHeight, color, opacity, html.EscapeString(bar.Note))
		fmt.Fprintf(&b, `<text class="value" x="%d" y="%d">%+.0f · %.0f%%</text>`, barsWidth-barValue+6, y+barHeight-3, v, 100*bar.Confidence)
	}
	b.WriteString("</svg>")
	return template.HTML(b.String())
}
