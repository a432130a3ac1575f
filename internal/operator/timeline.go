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
	cols := width - labelWidth
	lo, hi := span(tl, now)
	col := func(t time.Time) int {
		c := int(float64(t.Sub(lo)) / float64(hi.Sub(lo)) * float64(cols-1))
		return max(0, min(cols-1, c))
	}
	// The axis: three time labels, then the ruler with the now tick.
	format := "2006-01-02 15:04"
	switch d := hi.Sub(lo); {
	case d < 10*time.Minute:
		format = "15:04:05.000"
	case d < 2*24*time.Hour:
		format = "01-02 15:04:05"
	}
	labels := []rune(strings.Repeat(" ", cols))
	place := func(at int, s string) {
		for i, r := range []rune(s) {
			if at+i >= 0 && at+i < cols {
				labels[at+i] = r
			}
		}
	}
	mid := lo.Add(hi.Sub(lo) / 2)
	place(0, lo.UTC().Format(format))
	place(cols/2-len(mid.UTC().Format(format))/2, mid.UTC().Format(format))
	place(cols-len(hi.UTC().Format(format)), hi.UTC().Format(format))
	fmt.Fprintf(w, "%-*s%s\n", labelWidth, "", string(labels))
	ruler := []rune(strings.Repeat(string(g.axis), cols))
	ruler[0], ruler[cols/2], ruler[cols-1] = g.axisStart, g.tick, g.axisEnd
	ruler[col(now)] = g.nowTick
	fmt.Fprintf(w, "%-*s%s\n", labelWidth, "KID                   STATE", string(ruler))

	for _, k := range tl {
		row := []rune(strings.Repeat(" ", cols))
		fill := func(from, to int, r rune) {
			for i := max(0, from); i <= min(cols-1, to); i++ {
				row[i] = r
			}
		}
		mark := func(t time.Time, r rune) {
			if !t.IsZero() {
				row[col(t)] = r
			}
		}
		end := cols - 1
		switch k.Role {
		case lifecycle.RoleCurrent:
			if !k.Published.IsZero() && !k.SigningSince.IsZero() {
				fill(col(k.Published), col(k.SigningSince), g.published)
			}
			start := 0
			if !k.SigningSince.IsZero() {
				start = col(k.SigningSince)
			}
			fill(start, end, g.signing)
			mark(k.SigningSince, g.activation)
		case lifecycle.RolePending, lifecycle.RoleNext:
			if !k.Published.IsZero() {
				fill(col(k.Published), end, g.published)
			}
			mark(k.Promotable, g.activation)
		case lifecycle.RoleRetired:
			if k.Retired.IsZero() {
				fill(0, end, g.retired) // retirement not recorded: kept
				break
			}
			start := 0
			if !k.SigningSince.IsZero() {
				start = col(k.SigningSince)
			}
			fill(start, col(k.Retired), g.signing)
			fill(col(k.Retired), col(k.Removal), g.retired)
			mark(k.SigningSince, g.activation)
			mark(k.Retired, g.retirement)
			mark(k.Removal, g.remove)
		case lifecycle.RoleRevoked:
			if !k.SigningSince.IsZero() {
				fill(col(k.SigningSince), col(k.Retired), g.signing)
				mark(k.SigningSince, g.activation)
			}
			mark(k.Retired, g.revoked)
		}
		if c := col(now); row[c] == ' ' || row[c] == g.published || row[c] == g.signing || row[c] == g.retired {
			row[c] = g.now
		}
		state := string(k.Role)
		if k.Role == lifecycle.RoleRevoked && k.Label == "AWSCURRENT" {
			state = "REVOKED*"
		}
		fmt.Fprintf(w, "%-21s %-8s %s\n", k.Kid, state, string(row))
	}
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
	for _, k := range tl {
		if k.Role == lifecycle.RoleRevoked && k.Label == "AWSCURRENT" {
			fmt.Fprintf(w, "REVOKED*: %s is revoked but still AWSCURRENT: the emergency rollover has not finished\n", k.Kid)
		}
	}
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
