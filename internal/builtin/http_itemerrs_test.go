package builtin

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestHTTPItemErrorMessage: an item of batchItemFailures may carry its own
// errorMessage; it becomes that record's error (RecordErrs), so that its
// dead-letter copy says why it failed, with the credentials redacted.
// Items without one fall back to the response's reason.
func TestHTTPItemErrorMessage(t *testing.T) {
	s := newServer(t, reply(200, `{"batchItemFailures":[
		{"itemIdentifier":"10","errorMessage":"price missing\nat line 3"},
		{"itemIdentifier":"12"},
		{"itemIdentifier":"13","errorMessage":{"code":7,"why":"stock"}},
		{"itemIdentifier":"15","errorMessage":"token s3cr3t-t0ken-value refused"},
		{"itemIdentifier":"15","errorMessage":"the second answer for 15"},
		{"itemIdentifier":"11","errorMessage":null}
	]}`))
	h, _ := newTestHTTP(t, s.URL, time.Second)
	err := h.Handle(t.Context(), testRecords())
	var items *handler.ItemFailures
	if !errors.As(err, &items) {
		t.Fatalf("got %v, want *ItemFailures", err)
	}
	if fmt.Sprint(items.Offsets) != "[10 11 12 13 15]" {
		t.Fatalf("got offsets %v", items.Offsets)
	}
	prefix := "http handler: POST " + s.URL + ": the service reported the record failed: "
	want := map[int64]string{
		10: prefix + "price missing at line 3",
		13: prefix + `{"code":7,"why":"stock"}`,
		15: prefix + "token [REDACTED] refused",
	}
	if len(items.RecordErrs) != len(want) {
		t.Errorf("got record errors %v, want %d", items.RecordErrs, len(want))
	}
	for off, w := range want {
		if got := fmt.Sprint(items.RecordErrs[off]); got != w {
			t.Errorf("offset %d:\n got %q\nwant %q", off, got, w)
		}
	}
	if items.Err == nil || items.Err.Error() != "http handler: POST "+s.URL+": the service reported 5 of 5 records failed" {
		t.Errorf("got reason %v", items.Err)
	}
}
