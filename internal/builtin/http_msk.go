package builtin

import (
	"fmt"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
)

// UseMSKEvent makes h post the MSK event exactly as the lambda handler
// invokes a function with it (HTTP_HANDLER_BODY=msk, EVENT_RECORD_FORMAT
// and KAFKA_CLUSTER_ARN of the configuration h was built with, src for the
// rest) and read a 2xx answer as the lambda handler reads a function's: both
// itemIdentifier shapes. A function error is a 5xx: the batch failed.
// Call it before the first Handle.
func (h *HTTP) UseMSKEvent(cfg config.Handler, src config.EventSource) {
	format := mskevent.FormatSource
	if cfg.EventRecordFormat == config.RecordJSON {
		format = mskevent.FormatJSON
	}
	h.msk = newEncoder(cfg, src, format)
}

// mskOutcome reads a 2xx answer to an MSK event.
func (h *HTTP) mskOutcome(b *handler.Batch, code int, data []byte) error {
	offsets, invalid := mskevent.ParseAnswer(b.Topic, b.Partition, b.Records, data)
	if invalid != "" {
		return h.invalid(code, data, invalid)
	}
	if len(offsets) == 0 {
		return nil
	}
	return &handler.ItemFailures{
		Offsets: offsets,
		Err: fmt.Errorf("http handler: POST %s: the service reported %d of %d records failed",
			h.target, len(offsets), len(b.Records)),
	}
}
