// Package svgchart is the chart kit of the dashboard and of `backtest
// -plot`: the axis range, the mapping from data to SVG user units, and the
// path data of lines and bands. Each caller draws its own frame, labels
// and styles (the dashboard styles by CSS class, the backtest plot is a
// standalone file); what a value's position is, and how gaps and bands are
// drawn, is decided here once.
package svgchart

import (
	"fmt"
	"math"
	"strings"
)

// NiceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten: the top of
// an axis whose quarter ticks read as round numbers. It is 1 for a v that
// is not a positive finite number.
func NiceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// Point is one datum in data units.
type Point struct{ X, Y float64 }

// Finite tells whether v can be drawn: NaN and ±Inf are gaps.
func Finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Scale maps data to SVG user units: x from [X0, X1] onto [Left,
// Left+Width], y from [Y0, Y1] onto [Top+Height, Top] (SVG's y grows
// downwards, so larger values sit higher). An empty range maps every
// value to the left or bottom edge.
type Scale struct {
	Left, Top, Width, Height float64
	X0, X1, Y0, Y1           float64
}

// X is the horizontal position of data x.
func (s Scale) X(x float64) float64 {
	if s.X1 <= s.X0 {
		return s.Left
	}
	return s.Left + (x-s.X0)/(s.X1-s.X0)*s.Width
}

// Y is the vertical position of data y.
func (s Scale) Y(y float64) float64 {
	if s.Y1 <= s.Y0 {
		return s.Top + s.Height
	}
	return s.Top + s.Height - (y-s.Y0)/(s.Y1-s.Y0)*s.Height
}

// Ticks is n+1 evenly spaced values from Y0 to Y1, for grid lines.
func (s Scale) Ticks(n int) []float64 {
	out := make([]float64, n+1)
	for i := range out {
		out[i] = s.Y0 + (s.Y1-s.Y0)*float64(i)/float64(n)
	}
	return out
}

// Line is the path data ("M x y L x y …") of a line through pts, lifted
// at every point that is not finite, and the number of points drawn.
func Line(s Scale, pts []Point) (string, int) {
	var b strings.Builder
	drawn := 0
	pen := false
	for _, p := range pts {
		if !Finite(p.Y) {
			pen = false
			continue
		}
		cmd := 'L'
		if !pen {
			cmd = 'M'
		}
		fmt.Fprintf(&b, "%c%.1f %.1f ", cmd, s.X(p.X), s.Y(p.Y))
		pen = true
		drawn++
	}
	return strings.TrimSpace(b.String()), drawn
}

// Band is the path data of the area between lower and upper, which share
// their x at each index: one closed shape along upper and back along lower
// per run of indexes where both are finite (a run of one point has no
// area and is left out). It is "" when nothing can be filled.
func Band(s Scale, lower, upper []Point) string {
	var b strings.Builder
	n := min(len(lower), len(upper))
	both := func(i int) bool { return Finite(lower[i].Y) && Finite(upper[i].Y) }
	for i := 0; i < n; {
		if !both(i) {
			i++
			continue
		}
		j := i
		for j < n && both(j) {
			j++
		}
		if j-i >= 2 {
			fmt.Fprintf(&b, "M%.1f %.1f", s.X(upper[i].X), s.Y(upper[i].Y))
			for k := i + 1; k < j; k++ {
				fmt.Fprintf(&b, " L%.1f %.1f", s.X(upper[k].X), s.Y(upper[k].Y))
			}
			for k := j - 1; k >= i; k-- {
				fmt.Fprintf(&b, " L%.1f %.1f", s.X(lower[k].X), s.Y(lower[k].Y))
			}
			b.WriteString(" Z ")
		}
		i = j
	}
	return strings.TrimSpace(b.String())
}
