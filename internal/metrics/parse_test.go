package metrics

import (
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]float64
		err      string
	}{
		{name: "empty", in: "", want: map[string]float64{}},
		{
			name: "samples",
			in: "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n\n" +
				"b{op=\"Get Object\",s=\"2\\\"00\"} 1.5\nc -7\nd NaN\n",
			want: map[string]float64{"a_total": 3, `b{op="Get Object",s="2\"00"}`: 1.5, "c": -7},
		},
		{name: "no value", in: "a_total\n", err: `line 1 "a_total": no value`},
		{name: "bad value", in: "# c\na_total x\n", err: `line 2 "a_total x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseText(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseText = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "samples" {
				if v, ok := got["d"]; !ok || v == v {
					t.Errorf("d = %v, %v; want NaN", v, ok)
				}
				delete(got, "d")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ParseText = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestParseTextReadsWriteTo checks that ParseText reads back every sample the registry writes.
func TestParseTextReadsWriteTo(t *testing.T) {
	r := NewRegistry()
	r.Counter("c_total", "A counter.").Add(5)
	r.Gauge("g", "A gauge.").Set(-2)
	v := r.CounterVec("v_total", "A vector.", "op", "status")
	v.With("Get", "200").Add(2)
	v.With(`a "b"`, "x y\n").Inc()
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ParseText(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	want := map[string]float64{
		"c_total": 5, "g": -2, `v_total{op="Get",status="200"}`: 2, `v_total{op="a \"b\"",status="x y\n"}`: 1,
	}
	if len(got) != len(want) {
		t.Fatalf("ParseText = %v, want %v\n%s", got, want, b.String())
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v\n%s", k, got[k], w, b.String())
		}
	}
}
