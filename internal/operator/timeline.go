package operator

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"jwks-issuer/pkg/lifecycle"
)

func runTimeline(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	ascii := fs.Bool("ascii", false, "draw with ASCII characters only")
	width := fs.Int("width", 100, "the `COLUMNS` to fit (at least 60)")
	if _, status, ok := r.parse(fs, args); !ok {
		return status
	}
	if *width < 60 {
		return r.usageError("--width must be at least 60")
	}
	c, err := r.clients(ctx)
	if err != nil {
		return r.fail(err)
	}
	t, err := r.resolve(ctx, c, true)
	if err != nil {
		return r.fail(err)
	}
	snap, err := readSnapshot(ctx, c, t.secretID)
	if err != nil {
		return r.fail(fmt.Errorf("read the secret %s: %w", t.secretID, err))
	}
	now := r.now()
	tl := lifecycle.Timeline(snap.state, t.cfg.Lifecycle, now)
	head := "secret " + secretName(t.secretID)
	if t.stack != "" {
		head = "stack " + t.stack
	}
	fmt.Fprintf(r.out, "%s, at %s UTC\n", head, stamp(now))
	drawTimeline(r.out, tl, now, *width, glyphsFor(*ascii))
	return ExitOK
}

// glyphs are the characters of a timeline.
type glyphs struct {
	published, signing, retired    rune // bars: published and not signing; signing; retired, still published
	activation, retirement, remove rune // marks
	revoked, now                   rune
	axis, tick, nowTick            rune
	axisStart, axisEnd             rune
}

func glyphsFor(ascii bool) glyphs {
	if ascii {
		return glyphs{'.', '#', '=', '>', '<', 'x', 'X', '|', '-', '+', 'v', '+', '+'}
	}
	return glyphs{'░', '█', '▒', '▶', '◀', '×', '╳', '┃', '─', '┼', '▼', '├', '┤'}
}

// labelWidth is the kid (21 characters) and the state, with a space after each.
const labelWidth = 21 + 1 + 8 + 1

// drawTimeline draws one row per key on a shared time axis, width columns wide.
func drawTimeline(w io.Writer, tl []lifecycle.KeyTimeline, now time.Time, width int, g glyphs) {
	if len(tl) == 0 {
		fmt.Fprintln(w, "the secret holds no key yet: nothing to draw")
		return
	}
	lo, hi := span(tl, now)
	a := axis{lo: lo, hi: hi, cols: width - labelWidth}
	a.draw(w, now, g)
	for _, k := range tl {
		fmt.Fprintf(w, "%-21s %-8s %s\n", k.Kid, stateLabel(k), string(a.row(k, now, g)))
	}
	writeLegend(w, g, width)
	for _, k := range tl {
		if stillSigning(k) {
			fmt.Fprintf(w, "REVOKED*: %s is revoked but still AWSCURRENT: the emergency rollover has not finished\n", k.Kid)
		}
	}
}

// axis maps the time range [lo, hi] onto cols columns.
type axis struct {
	lo, hi time.Time
	cols   int
}

// col is the column of t, clamped to the axis.
func (a axis) col(t time.Time) int {
	c := int(float64(t.Sub(a.lo)) / float64(a.hi.Sub(a.lo)) * float64(a.cols-1))
	return max(0, min(a.cols-1, c))
}

// draw writes the axis: three time labels, then the ruler with the now tick.
func (a axis) draw(w io.Writer, now time.Time, g glyphs) {
	format := axisFormat(a.hi.Sub(a.lo))
	labels := []rune(strings.Repeat(" ", a.cols))
	place := func(at int, s string) {
		for i, r := range []rune(s) {
			if at+i >= 0 && at+i < a.cols {
				labels[at+i] = r
			}
		}
	}
	lo, mid, hi := a.lo.UTC().Format(format), a.lo.Add(a.hi.Sub(a.lo)/2).UTC().Format(format), a.hi.UTC().Format(format)
	place(0, lo)
	place(a.cols/2-len(mid)/2, mid)
	place(a.cols-len(hi), hi)
	fmt.Fprintf(w, "%-*s%s\n", labelWidth, "", string(labels))
	ruler := []rune(strings.Repeat(string(g.axis), a.cols))
	ruler[0], ruler[a.cols/2], ruler[a.cols-1] = g.axisStart, g.tick, g.axisEnd
	ruler[a.col(now)] = g.nowTick
	fmt.Fprintf(w, "%-*s%s\n", labelWidth, "KID                   STATE", string(ruler))
}

// axisFormat is the precision of the axis labels: enough to tell the
// marks of a short range apart.
func axisFormat(d time.Duration) string {
	switch {
	case d < 10*time.Minute:
		return "15:04:05.000"
	case d < 2*24*time.Hour:
		return "01-02 15:04:05"
	}
	return "2006-01-02 15:04"
}

// row draws one key: its bars and marks by its state, then now.
func (a axis) row(k lifecycle.KeyTimeline, now time.Time, g glyphs) []rune {
	p := painter{axis: a, row: []rune(strings.Repeat(" ", a.cols)), g: g}
	if paint := painters[k.Role]; paint != nil {
		paint(p, k)
	}
	// Now goes over blank and bars, never over a mark: a mark at now is
	// the more telling of the two.
	if c := a.col(now); p.row[c] == ' ' || p.row[c] == g.published || p.row[c] == g.signing || p.row[c] == g.retired {
		p.row[c] = g.now
	}
	return p.row
}

// painter draws on one key's row.
type painter struct {
	axis
	row []rune
	g   glyphs
}

// fill draws r from column from to column to, clamped to the row.
func (p painter) fill(from, to int, r rune) {
	for i := max(0, from); i <= min(p.cols-1, to); i++ {
		p.row[i] = r
	}
}

// mark puts r at t's column; a zero t is not known and gets no mark.
func (p painter) mark(t time.Time, r rune) {
	if !t.IsZero() {
		p.row[p.col(t)] = r
	}
}

// from is the column a bar starting at t starts at: an unknown start is
// before the axis.
func (p painter) from(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return p.col(t)
}

// end is the last column: a bar that has not ended runs off the axis.
func (p painter) end() int { return p.cols - 1 }

// painters draw each state's bars and marks. A mark is drawn after the
// bars it sits on, so that it shows.
var painters = map[lifecycle.Role]func(p painter, k lifecycle.KeyTimeline){
	// CURRENT: published before it signed (when both are known), and
	// signing from its activation on.
	lifecycle.RoleCurrent: func(p painter, k lifecycle.KeyTimeline) {
		if !k.Published.IsZero() && !k.SigningSince.IsZero() {
			p.fill(p.col(k.Published), p.col(k.SigningSince), p.g.published)
		}
		p.fill(p.from(k.SigningSince), p.end(), p.g.signing)
		p.mark(k.SigningSince, p.g.activation)
	},
	// pending and NEXT: published from their first publication on, with
	// the earliest activation marked.
	lifecycle.RolePending: paintWaiting,
	lifecycle.RoleNext:    paintWaiting,
	// RETIRED: signed until its retirement, then published until its
	// removal. Without a recorded retirement it is kept: published
	// across the whole axis.
	lifecycle.RoleRetired: func(p painter, k lifecycle.KeyTimeline) {
		if k.Retired.IsZero() {
			p.fill(0, p.end(), p.g.retired)
			return
		}
		p.fill(p.from(k.SigningSince), p.col(k.Retired), p.g.signing)
		p.fill(p.col(k.Retired), p.col(k.Removal), p.g.retired)
		p.mark(k.SigningSince, p.g.activation)
		p.mark(k.Retired, p.g.retirement)
		p.mark(k.Removal, p.g.remove)
	},
	// REVOKED: signing until the revocation when its activation is known
	// (no bar otherwise: the history does not say), then gone at once.
	lifecycle.RoleRevoked: func(p painter, k lifecycle.KeyTimeline) {
		if !k.SigningSince.IsZero() {
			p.fill(p.col(k.SigningSince), p.col(k.Retired), p.g.signing)
			p.mark(k.SigningSince, p.g.activation)
		}
		p.mark(k.Retired, p.g.revoked)
	},
}

func paintWaiting(p painter, k lifecycle.KeyTimeline) {
	if !k.Published.IsZero() {
		p.fill(p.col(k.Published), p.end(), p.g.published)
	}
	p.mark(k.Promotable, p.g.activation)
}

// stillSigning tells whether k is revoked but still AWSCURRENT: an
// emergency rollover that has not finished.
func stillSigning(k lifecycle.KeyTimeline) bool {
	return k.Role == lifecycle.RoleRevoked && k.Label == "AWSCURRENT"
}

func stateLabel(k lifecycle.KeyTimeline) string {
	if stillSigning(k) {
		return "REVOKED*"
	}
	return string(k.Role)
}

// writeLegend writes what each character means, wrapped to width.
func writeLegend(w io.Writer, g glyphs, width int) {
	legend := []string{
		fmt.Sprintf("%c published, not signing", g.published), fmt.Sprintf("%c signing", g.signing),
		fmt.Sprintf("%c retired, still published", g.retired), fmt.Sprintf("%c activation (NEXT: earliest)", g.activation),
		fmt.Sprintf("%c retirement", g.retirement), fmt.Sprintf("%c removal", g.remove),
		fmt.Sprintf("%c revoked", g.revoked), fmt.Sprintf("%c now", g.now),
	}
	line := ""
	for _, l := range legend {
		if len([]rune(line))+len([]rune(l))+2 > width && line != "" {
			fmt.Fprintln(w, line)
			line = ""
		}
		if line != "" {
			line += "  "
		}
		line += l
	}
	fmt.Fprintln(w, line)
}

// span is the time range to draw: every known moment and now, with room
// after the last one.
func span(tl []lifecycle.KeyTimeline, now time.Time) (lo, hi time.Time) {
	lo, hi = now, now
	for _, k := range tl {
		for _, t := range []time.Time{k.Published, k.Promotable, k.SigningSince, k.Retired, k.Removal} {
			if t.IsZero() {
				continue
			}
			if t.Before(lo) {
				lo = t
			}
			if t.After(hi) {
				hi = t
			}
		}
	}
	d := hi.Sub(lo)
	if d < time.Second {
		d = time.Second
	}
	lo = lo.Add(-d / 40)
	hi = hi.Add(d / 10)
	if minHi := now.Add(d / 8); hi.Before(minHi) {
		hi = minHi
	}
	return lo, hi
}

// secretName is the name part of a secret's ARN.
func secretName(id string) string {
	if i := strings.Index(id, ":secret:"); i >= 0 {
		return id[i+len(":secret:"):]
	}
	return id
}
