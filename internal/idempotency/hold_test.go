package idempotency

import (
	"slices"
	"testing"
)

func TestWithout(t *testing.T) {
	tests := []struct {
		name             string
		keys, drop, want []string
	}{
		{"all, in order", []string{"a", "b", "c"}, []string{"a", "b", "c"}, []string{}},
		{"a subsequence", []string{"a", "b", "c", "d"}, []string{"b", "d"}, []string{"a", "c"}},
		{"out of order", []string{"a", "b", "c", "d"}, []string{"d", "a"}, []string{"b", "c"}},
		{"some not held", []string{"a", "b", "c"}, []string{"x", "b"}, []string{"a", "c"}},
		{"none", []string{"a"}, nil, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := without(slices.Clone(tt.keys), tt.drop); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
