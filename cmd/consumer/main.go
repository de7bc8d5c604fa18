// Command consumer is msk-consumer: a Kafka consumer service for Amazon MSK,
// configured by environment variables. See the README for the commands, the
// variables and what the service does with records.
//
// This is the stock binary: the service with the Go handlers of this
// repository compiled in. To add yours, write a package under
// handlers/<name> and add a line to the map below, or build your own binary
// in your own module (see examples/own-binary).
package main

import (
	"github.com/msk-consumer/msk-consumer/handlers/example"
	"github.com/msk-consumer/msk-consumer/service"
)

func main() {
	service.Main(service.Handlers{
		"example": example.New,
	})
}
