package main

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"jwks-issuer/internal/perf"
)

// result is one path's samples, one per round.
type result struct {
	path   perf.Path
	ns     []float64 // wall-clock ns per operation
	cpu    []float64 // CPU ns per operation, all threads (GC included)
	allocs []float64
	bytes  []float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// nsPerToken is the median CPU time per token (batch paths make many per
// operation): on a shared machine, time the benchmark spent waiting for a
// core is not a cost of the path.
func (r *result) nsPerToken() float64     { return median(r.cpu) / float64(r.path.Tokens) }
func (r *result) allocsPerToken() float64 { return median(r.allocs) / float64(r.path.Tokens) }

// runMicro runs every path count times, in interleaved rounds: a burst of
// load from elsewhere on the machine then lands on all paths alike instead
// of on whichever happened to be running.
func runMicro(count int, match *regexp.Regexp, logf func(string, ...any)) ([]*result, error) {
	paths, err := perf.Paths()
	if err != nil {
		return nil, err
	}
	verifying, err := verifyPaths()
	if err != nil {
		return nil, err
	}
	paths = append(paths, verifying...)
	var results []*result
	for _, p := range paths {
		if match.MatchString(p.Name) {
			results = append(results, &result{path: p})
		}
	}
	for round := range count {
		start := time.Now()
		for _, r := range results {
			cpu0 := cpuTime()
			br := testing.Benchmark(r.path.Bench) // -test.benchtime is set in main
			cpu := cpuTime() - cpu0
			if br.N == 0 {
				return nil, fmt.Errorf("benchmark %s failed", r.path.Name)
			}
			r.ns = append(r.ns, float64(br.T.Nanoseconds())/float64(br.N))
			r.cpu = append(r.cpu, float64(cpu.Nanoseconds())/float64(br.N))
			r.allocs = append(r.allocs, float64(br.MemAllocs)/float64(br.N))
			r.bytes = append(r.bytes, float64(br.MemBytes)/float64(br.N))
		}
		logf("round %d/%d done in %s", round+1, count, time.Since(start).Round(time.Second))
	}
	return results, nil
}

// summary is the median view of the results, floors resolved.
type summary struct {
	byName map[string]*row
	order  []string
}

type row struct {
	name          string
	ns, allocs, b float64 // per token; ns is CPU time
	wall          float64 // wall-clock ns per token
	min, max      float64 // CPU ns per token, over the rounds
	tokens        int
	floor, base   string
	chosen        string // for a floor: the candidate it is
}

func summarise(results []*result) *summary {
	s := &summary{byName: map[string]*row{}}
	add := func(r *row) {
		s.byName[r.name] = r
		s.order = append(s.order, r.name)
	}
	for _, r := range results {
		// A floor goes first, ahead of its candidates.
		for floor, candidates := range perf.Floors {
			if candidates[0] != r.path.Name {
				continue
			}
			var best *result
			for _, c := range results {
				if slices.Contains(candidates, c.path.Name) && (best == nil || c.nsPerToken() < best.nsPerToken()) {
					best = c
				}
			}
			fr := rowOf(best)
			fr.name, fr.chosen = floor, best.path.Name
			add(fr)
		}
		add(rowOf(r))
	}
	return s
}

func rowOf(r *result) *row {
	n := float64(r.path.Tokens)
	return &row{name: r.path.Name, ns: r.nsPerToken(), allocs: r.allocsPerToken(), b: median(r.bytes) / n,
		wall: median(r.ns) / n, min: slices.Min(r.cpu) / n, max: slices.Max(r.cpu) / n, tokens: r.path.Tokens,
		floor: r.path.Floor, base: r.path.Baseline}
}

func (s *summary) ratio(r *row, other string) string {
	o, ok := s.byName[other]
	if !ok || o.ns == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", r.ns/o.ns)
}

func (s *summary) print(count int, benchtime time.Duration) {
	fmt.Printf("\n## Warm paths: medians of %d interleaved rounds of %s each\n", count, benchtime)
	fmt.Printf("ns = CPU time of the process per token (user+sys, GC included); wall = wall-clock median.\n")
	fmt.Printf("Batch paths are per token. vs_floor and vs_gojwt compare CPU medians.\n\n")
	fmt.Printf("%-30s %10s %10s %10s %10s %7s %7s %8s %8s\n", "path", "ns/token", "wall", "min", "max", "allocs", "B", "vs_floor", "vs_gojwt")
	for _, name := range s.order {
		r := s.byName[name]
		label := name
		if r.chosen != "" {
			label += " = " + r.chosen[strings.LastIndexByte(r.chosen, '-')+1:]
		}
		fmt.Printf("%-30s %10.0f %10.0f %10.0f %10.0f %7s %7.0f %8s %8s\n", label, r.ns, r.wall, r.min, r.max, allocs(r.allocs), r.b,
			s.ratio(r, r.floor), s.ratio(r, r.base))
	}
	fmt.Println()
	for _, name := range s.order {
		r := s.byName[name]
		fmt.Printf("path=%s ns_op=%.0f allocs_op=%s vs_floor=%s vs_golangjwt=%s\n", name, r.ns, allocs(r.allocs),
			s.ratio(r, r.floor), s.ratio(r, r.base))
	}
	fmt.Println()
	if r := s.byName["es256-signer"]; r != nil {
		fmt.Printf("single path=es256-signer tokens_per_s_per_core=%.0f\n", 1e9/r.ns)
	}
	for _, name := range s.order {
		r := s.byName[name]
		if r.tokens > 1 {
			fmt.Printf("batch path=%s items=%d ms_per_invocation=%.2f tokens_per_s_per_core=%.0f\n",
				name, r.tokens, r.ns*float64(r.tokens)/1e6, 1e9/r.ns)
		}
	}
}

func allocs(a float64) string {
	if math.Abs(a-math.Round(a)) < 0.05 {
		return fmt.Sprintf("%.0f", a)
	}
	return fmt.Sprintf("%.1f", a)
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
