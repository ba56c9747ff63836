package upload

import "testing"

// BenchmarkPartSize measures the part-size schedule, called once per part of every upload.
func BenchmarkPartSize(b *testing.B) {
	var sink int64
	n := 1
	for b.Loop() {
		sink += PartSize(n, 8<<20, 128<<20)
		if n++; n > 10000 {
			n = 1
		}
	}
	if sink <= 0 {
		b.Fatal("no part sizes")
	}
}

// BenchmarkMaxObjectSize measures the start-up computation of the largest object the schedule allows.
func BenchmarkMaxObjectSize(b *testing.B) {
	for b.Loop() {
		if MaxObjectSize(8<<20, 128<<20) <= 0 {
			b.Fatal("no size")
		}
	}
}
