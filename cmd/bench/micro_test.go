package main

import (
	"math"
	"testing"

	"jwks-issuer/internal/perf"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is a number")
	}
}

// The floor is the faster candidate; batch paths count per token; ratios
// compare CPU medians.
func TestSummary(t *testing.T) {
	res := func(name string, tokens int, floor, base string, cpu ...float64) *result {
		r := &result{path: perf.Path{Name: name, Tokens: tokens, Floor: floor, Baseline: base}}
		for _, c := range cpu {
			r.cpu = append(r.cpu, c)
			r.ns = append(r.ns, c)
			r.allocs = append(r.allocs, 61*float64(tokens))
			r.bytes = append(r.bytes, 1)
		}
		return r
	}
	s := summarise([]*result{
		res("es256-floor-sign", 1, "es256-floor", "es256-golangjwt", 110, 100, 120),
		res("es256-floor-asn1", 1, "es256-floor", "es256-golangjwt", 90, 100, 95),
		res("es256-signer", 1, "es256-floor", "es256-golangjwt", 100, 99, 101),
		res("es256-golangjwt", 1, "es256-floor", "es256-golangjwt", 140, 150, 130),
		res("es256-batch100", 100, "es256-floor", "es256-golangjwt", 9600, 9500, 9700),
	})
	floor := s.byName["es256-floor"]
	if floor == nil || floor.chosen != "es256-floor-asn1" || floor.ns != 95 {
		t.Fatalf("floor %+v", floor)
	}
	if s.order[0] != "es256-floor" {
		t.Fatalf("order %v", s.order)
	}
	signer := s.byName["es256-signer"]
	if got := s.ratio(signer, signer.floor); got != "1.05" {
		t.Errorf("signer vs floor %s", got)
	}
	if got := s.ratio(signer, signer.base); got != "0.71" {
		t.Errorf("signer vs golang-jwt %s", got)
	}
	b := s.byName["es256-batch100"]
	if b.ns != 96 || b.allocs != 61 {
		t.Errorf("batch per token: %v ns, %v allocs", b.ns, b.allocs)
	}
	if got := s.ratio(b, "missing"); got != "n/a" {
		t.Errorf("ratio to a missing path %s", got)
	}
}
