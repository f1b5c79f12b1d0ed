package bench

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a chart: a value per x category (NaN: no point).
type Series struct {
	Name   string
	Values []float64
}

// Panel is one line chart: categorical x (evenly spaced), numeric y.
type Panel struct {
	Title  string
	XLabel string
	YLabel string
	X      []string
	Series []Series
	LogY   bool // decades; non-positive values are skipped
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"}

const (
	panelW, panelH = 520, 380
	padL, padR     = 70, 20
	padT, padB     = 40, 80
)

// ChartSVG draws panels side by side in one SVG document.
func ChartSVG(title string, panels ...Panel) string {
	var b strings.Builder
	width, height := panelW*len(panels), panelH+30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, esc(title))
	for i, p := range panels {
		fmt.Fprintf(&b, `<g transform="translate(%d,30)">`+"\n", i*panelW)
		drawPanel(&b, p)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func drawPanel(b *strings.Builder, p Panel) {
	x0, y0 := float64(padL), float64(padT)
	w, h := float64(panelW-padL-padR), float64(panelH-padT-padB)
	fmt.Fprintf(b, `<text x="%s" y="20" text-anchor="middle" font-size="13">%s</text>`+"\n", ff(x0+w/2), esc(p.Title))

	lo, hi, ok := yRange(p)
	if !ok {
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#888">no data</text>`+"\n", ff(x0+w/2), ff(y0+h/2))
		lo, hi = 0, 1
	}
	yPos := func(v float64) float64 {
		if p.LogY {
			return y0 + h - (math.Log10(v)-lo)/(hi-lo)*h
		}
		return y0 + h - (v-lo)/(hi-lo)*h
	}
	xPos := func(i int) float64 {
		if len(p.X) == 1 {
			return x0 + w/2
		}
		return x0 + float64(i)*w/float64(len(p.X)-1)
	}
	// Grid and y ticks.
	for _, t := range yTicks(lo, hi, p.LogY) {
		y := yPos(t)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`+"\n", ff(x0), ff(y), ff(x0+w), ff(y))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="end">%s</text>`+"\n", ff(x0-6), ff(y+4), esc(tickLabel(t)))
	}
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#444"/>`+"\n", ff(x0), ff(y0), ff(w), ff(h))
	for i, x := range p.X {
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", ff(xPos(i)), ff(y0+h+16), esc(x))
	}
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", ff(x0+w/2), ff(y0+h+34), esc(p.XLabel))
	fmt.Fprintf(b, `<text transform="translate(14,%s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", ff(y0+h/2), esc(p.YLabel))

	for si, s := range p.Series {
		color := palette[si%len(palette)]
		var pts []string
		for i, v := range s.Values {
			if i >= len(p.X) || math.IsNaN(v) || p.LogY && v <= 0 {
				continue
			}
			x, y := xPos(i), yPos(v)
			pts = append(pts, ff(x)+","+ff(y))
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>`+"\n",
				ff(x), ff(y), color, esc(fmt.Sprintf("%s, %s: %s", s.Name, p.X[i], tickLabel(v))))
		}
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		// Legend below the x label, three entries a row.
		lx := x0 + float64(si%3)*w/3
		ly := y0 + h + 54 + float64(si/3)*16
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"/>`+"\n", ff(lx), ff(ly-4), ff(lx+16), ff(ly-4), color)
		fmt.Fprintf(b, `<text x="%s" y="%s">%s</text>`+"\n", ff(lx+20), ff(ly), esc(s.Name))
	}
}

// yRange returns the y axis range: [0, nice max] for linear axes, whole
// decades (as log10) for log axes.
func yRange(p Panel) (lo, hi float64, ok bool) {
	minV, maxV := math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for _, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || p.LogY && v <= 0 {
				continue
			}
			minV, maxV = math.Min(minV, v), math.Max(maxV, v)
		}
	}
	if math.IsInf(maxV, -1) {
		return 0, 1, false
	}
	if p.LogY {
		lo, hi = math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
		if hi <= lo {
			hi = lo + 1
		}
		return lo, hi, true
	}
	if maxV <= 0 {
		return 0, 1, true
	}
	return 0, niceCeil(maxV), true
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

func yTicks(lo, hi float64, logY bool) []float64 {
	var out []float64
	if logY {
		for d := lo; d <= hi; d++ {
			out = append(out, math.Pow(10, d))
		}
		return out
	}
	for i := 0; i <= 5; i++ {
		out = append(out, lo+(hi-lo)*float64(i)/5)
	}
	return out
}

// tickLabel prints 1500 as 1.5k, 2000000 as 2M, 0.05 as 0.05.
func tickLabel(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
