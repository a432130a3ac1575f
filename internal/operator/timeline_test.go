package operator

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"jwks-issuer/pkg/lifecycle"
)

// The timeline has one row per key the secret knows, with its state, and
// the marks fall where the state puts them: CURRENT's activation in the
// column of its predecessor's retirement, the retired key's removal after
// its retirement, a revoked key's cross. It fits its width, and --ascii is
// ASCII.
func TestTimeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *testStack)
	}{
		{"after two rotations", func(t *testing.T, s *testStack) { s.rotate(t); s.rotate(t) }},
		{"after an emergency rollover", func(t *testing.T, s *testStack) {
			s.rotate(t)
			s.rotate(t)
			s.tag(t, lifecycle.TagRollover, lifecycle.RolloverEmergency)
			s.rotate(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, nil, false)
			tt.setup(t, s)
			state, _ := s.secretState(t)
			tl := lifecycle.Timeline(state, lifecycleOf(t, nil), time.Now())
			for _, mode := range []struct {
				args  []string
				g     glyphs
				width int
			}{{nil, glyphsFor(false), 100}, {[]string{"--ascii"}, glyphsFor(true), 100}, {[]string{"--width", "80"}, glyphsFor(false), 80}} {
				code, out := s.run(t, "", append([]string{"timeline", "--secret", s.SecretARN}, mode.args...)...)
				if code != ExitOK {
					t.Fatalf("timeline %v exit %d\n%s", mode.args, code, out)
				}
				for _, line := range strings.Split(out, "\n") {
					if n := utf8.RuneCountInString(line); n > mode.width {
						t.Errorf("line of %d columns: %q", n, line)
					}
					if mode.g.signing == '#' {
						for _, r := range line {
							if r > 127 {
								t.Errorf("--ascii drew %q in %q", r, line)
								break
							}
						}
					}
				}
				if !strings.ContainsRune(out, mode.g.nowTick) {
					t.Errorf("no now mark %q on the axis:\n%s", mode.g.nowTick, out)
				}
				rows := map[string]string{}
				for _, k := range tl {
					row := rowOf(out, k.Kid)
					if row == "" || !strings.Contains(row, string(k.Role)) {
						t.Errorf("no row for %s %s:\n%s", k.Kid, k.Role, out)
						continue
					}
					rows[k.Kid] = row[labelWidth:]
				}
				for _, k := range tl {
					row := []rune(rows[k.Kid])
					switch k.Role {
					case lifecycle.RoleCurrent:
						if col(row, mode.g.activation) < 0 {
							t.Errorf("CURRENT %s has no activation mark: %q", k.Kid, string(row))
						}
					case lifecycle.RoleRetired:
						ret, rem := col(row, mode.g.retirement), col(row, mode.g.remove)
						if ret < 0 || rem <= ret {
							t.Errorf("RETIRED %s: retirement at column %d, removal at %d: %q", k.Kid, ret, rem, string(row))
						}
						// Its retirement is the moment CURRENT began signing.
						if cur := []rune(rows[tl[0].Kid]); tl[0].SigningSince.Equal(k.Retired) && col(cur, mode.g.activation) != ret {
							t.Errorf("CURRENT's activation (column %d) is not in the column of %s's retirement (%d)",
								col(cur, mode.g.activation), k.Kid, ret)
						}
					case lifecycle.RoleRevoked:
						if col(row, mode.g.revoked) < 0 {
							t.Errorf("REVOKED %s has no revocation mark: %q", k.Kid, string(row))
						}
						if k.SigningSince.IsZero() && col(row, mode.g.signing) >= 0 {
							t.Errorf("REVOKED %s is drawn signing, with no known signing time: %q", k.Kid, string(row))
						}
					case lifecycle.RoleNext:
						if col(row, mode.g.published) < 0 {
							t.Errorf("NEXT %s is not drawn as published: %q", k.Kid, string(row))
						}
					}
				}
			}
		})
	}
}

func rowOf(out, kid string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, kid+" ") {
			return line
		}
	}
	return ""
}

// col is the column of the first r in row, -1 if none.
func col(row []rune, r rune) int {
	for i, x := range row {
		if x == r {
			return i
		}
	}
	return -1
}
