// Command own-binary is msk-consumer built by a team in its own module: the
// whole service (every command, variable, metric and guarantee of the stock
// binary) with the team's handler compiled in, selected by HANDLER=orders.
//
// Only github.com/msk-consumer/msk-consumer/handler and github.com/msk-consumer/msk-consumer/service are used: the handler
// API and the entry point.
package main

import "github.com/msk-consumer/msk-consumer/service"

func main() {
	service.Main(service.Handlers{
		"orders": NewOrders,
	})
}
