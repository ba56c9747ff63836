package main

import (
	"math"
	"sort"
)

// summary is the central value and spread of one workload's repetitions.
type summary struct {
	N         int     // successful repetitions
	Median    float64 // NaN when N == 0
	Min, Max  float64
	SpreadPct float64 // (Max-Min)/Median in percent; 0 for a single repetition
}

// summarize computes the median and spread of values. It does not modify values.
func summarize(values []float64) summary {
	if len(values) == 0 {
		return summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN(), SpreadPct: math.NaN()}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	s := summary{N: n, Median: med, Min: v[0], Max: v[n-1]}
	if med > 0 {
		s.SpreadPct = (s.Max - s.Min) / med * 100
	}
	return s
}

// ratio returns a/b, or NaN when either is unknown or b is not positive.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 {
		return math.NaN()
	}
	return a / b
}
