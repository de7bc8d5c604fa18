package main

import (
	"sort"

	"msk-consumer/handlers/example"
	"msk-consumer/handler"
)

// compiled lists the Go handlers built into this binary, selected by
// HANDLER=<name>. To add yours: write a package under handlers/<name> with
// a handler.Factory, and add a line here. See docs/HANDLERS.md.
var compiled = map[string]handler.Factory{
	"example": example.New,
}

func handlerNames() []string {
	names := make([]string, 0, len(compiled))
	for n := range compiled {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
