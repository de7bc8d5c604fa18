package handler

import "context"

// Discard accepts every record without looking at it. It is for benchmarks
// of the rest of the pipeline and for deliberately draining a topic: with it
// the group's offsets move to the end of what was fetched.
type Discard struct{}

// Handle returns nil.
func (Discard) Handle(context.Context, Batch) error { return nil }
