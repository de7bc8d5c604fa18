package service

import (
	"context"
	"io"

	"github.com/msk-consumer/msk-consumer/handlers/example"
)

// testHandlers are the Go handlers the tests' commands know, as the stock
// binary's main.go gives them.
var testHandlers = Handlers{"example": example.New}

// run runs a command as the binary would, with testHandlers.
func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	return Run(context.Background(), Env{Args: args, Lookup: lookup, Stdout: stdout, Stderr: stderr}, testHandlers)
}
