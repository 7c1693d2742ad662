package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"sort"
)

// Plot geometry, in SVG user units.
const (
	plotPanelW = 440
	plotPanelH = 300
	plotLeft   = 70 // room for the y labels
	plotTop    = 60 // room for the title and legend
	plotGap    = 90 // between the two panels
	plotBottom = 50 // room for the x labels
	plotTicks  = 5
)

// plotPoint is one run in a chart; a hollow circle marks a run that was
// not steady.
type plotPoint struct {
	x, y   float64
	steady bool
}

// plotPanel is one chart of the sweep's plot: a y value per run, against
// offered load.
type plotPanel struct {
	title string
	y     func(r *compareRun) float64
}

// svg draws the sweep: deliveries per server core, and p99 latency,
// against offered deliveries/s, one line per server. It is written by
// hand, so that the harness needs no plotting tool.
func (cmp *comparison) svg() []byte {
	panels := []plotPanel{
		{"deliveries/s per server core", func(r *compareRun) float64 { return r.perCore() }},
		{"p99 latency, ms", func(r *compareRun) float64 { return r.Report.LatencyMS.P99 }},
	}
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}
	width := plotLeft + 2*plotPanelW + plotGap + 30
	height := plotTop + plotPanelH + plotBottom
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	mode := "plain ws"
	if cmp.TLS {
		mode = "TLS"
	}
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", plotLeft,
		html.EscapeString(fmt.Sprintf("tickbench workload %s (%s), %d connections, %s: against offered deliveries/s", cmp.Workload, cmp.About, cmp.Connections, mode)))
	names := cmp.names()
	for i, n := range names {
		x := plotLeft + i*140
		fmt.Fprintf(&b, `<rect x="%d" y="32" width="14" height="4" fill="%s"/><text x="%d" y="38">%s</text>`+"\n", x, colors[i%len(colors)], x+20, html.EscapeString(n))
	}
	fmt.Fprintf(&b, `<circle cx="%d" cy="34" r="4" fill="white" stroke="#444" stroke-width="1.5"/><text x="%d" y="38">a run that fell behind its offered load</text>`+"\n",
		plotLeft+len(names)*140+7, plotLeft+len(names)*140+20)
	for p, panel := range panels {
		x0 := plotLeft + p*(plotPanelW+plotGap)
		cmp.drawPanel(&b, panel, names, colors, x0)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// drawPanel draws one chart with its axes at x0.
func (cmp *comparison) drawPanel(b *bytes.Buffer, panel plotPanel, names, colors []string, x0 int) {
	var maxX, maxY float64
	for i := range cmp.Runs {
		r := &cmp.Runs[i]
		if r.Report == nil {
			continue
		}
		maxX, maxY = math.Max(maxX, r.Offered), math.Max(maxY, panel.y(r))
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	px := func(v float64) float64 { return float64(x0) + v/maxX*plotPanelW }
	py := func(v float64) float64 { return float64(plotTop+plotPanelH) - v/maxY*plotPanelH }
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, plotTop-6, html.EscapeString(panel.title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", x0, plotTop, plotPanelW, plotPanelH)
	for i := 0; i <= plotTicks; i++ {
		xv, yv := maxX*float64(i)/plotTicks, maxY*float64(i)/plotTicks
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, px(xv), plotTop, px(xv), plotTop+plotPanelH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, px(xv), plotTop+plotPanelH+16, short(xv))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, x0, py(yv), x0+plotPanelW, py(yv))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, py(yv)+4, short(yv))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">offered deliveries/s</text>`+"\n", x0+plotPanelW/2, plotTop+plotPanelH+36)
	for i, n := range names {
		var pts []plotPoint
		for j := range cmp.Runs {
			r := &cmp.Runs[j]
			if r.Server == n && r.Report != nil {
				_, ok := r.steady()
				pts = append(pts, plotPoint{r.Offered, panel.y(r), ok})
			}
		}
		sort.Slice(pts, func(a, c int) bool { return pts[a].x < pts[c].x })
		color := colors[i%len(colors)]
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, color)
		for _, p := range pts {
			fmt.Fprintf(b, "%.1f,%.1f ", px(p.x), py(p.y))
		}
		b.WriteString("\"/>\n")
		for _, p := range pts {
			fill := color
			if !p.steady {
				fill = "white" // the run fell behind its offered load
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s" stroke-width="1.5"/>`, px(p.x), py(p.y), fill, color)
		}
		b.WriteString("\n")
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short formats an axis label: 1.5M, 250k, 40, 0.5.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e4)/100)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/10)/100)
	default:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
}
