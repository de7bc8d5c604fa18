package mskevent

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/msk-consumer/msk-consumer/handler"
)

// ParseAnswer reads a function's answer to the event of recs, records of
// topic and partition in offset order, as the event source mapping does:
// an empty payload, null, {} or an empty batchItemFailures is success; a
// batchItemFailures names the records that failed, each by
//
//	"itemIdentifier": {"partition": "orders-3", "offset": 42}
//
// (the shape of Powertools' batch utility for Kafka and of the mapping's
// documentation; the offset may also be a decimal string) or by
//
//	"itemIdentifier": "42"
//
// It returns the failed offsets, sorted and without repeats, or, when the
// answer cannot be understood (not JSON, not an object, an identifier that
// is missing, of another partition or not an offset of recs), why, and the
// whole batch has failed.
func ParseAnswer(topic string, partition int32, recs []handler.Record, payload []byte) (offsets []int64, invalid string) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, ""
	}
	if !json.Valid(trimmed) {
		return nil, "the answer is not JSON"
	}
	if trimmed[0] != '{' {
		// A function may return anything: the mapping reads only an
		// object's batchItemFailures, and takes anything else for
		// success. A string, number or array names no failures.
		return nil, ""
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier json.RawMessage `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(trimmed, &resp); err != nil {
		return nil, "batchItemFailures is not an array of objects"
	}
	if len(resp.BatchItemFailures) == 0 {
		return nil, ""
	}
	tp := topic + "-" + strconv.FormatInt(int64(partition), 10)
	offsets = make([]int64, 0, len(resp.BatchItemFailures))
	for i, f := range resp.BatchItemFailures {
		off, reason := parseItemIdentifier(f.ItemIdentifier, tp)
		if reason == "" && !HasOffset(recs, off) {
			reason = "offset " + strconv.FormatInt(off, 10) + " is not an offset of this batch"
		}
		if reason != "" {
			return nil, "batchItemFailures[" + strconv.Itoa(i) + "].itemIdentifier " + reason
		}
		offsets = append(offsets, off)
	}
	slices.Sort(offsets)
	return slices.Compact(offsets), ""
}

// parseItemIdentifier returns the offset an itemIdentifier names, or why it
// names none of partition tp.
func parseItemIdentifier(raw json.RawMessage, tp string) (int64, string) {
	switch {
	case len(raw) == 0:
		return 0, "is missing"
	case string(raw) == "null":
		return 0, "is null"
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, "is not a string"
		}
		return ParseOffset(s)
	case raw[0] == '{':
		var id struct {
			Partition *string          `json:"partition"`
			Offset    *json.RawMessage `json:"offset"`
		}
		if err := json.Unmarshal(raw, &id); err != nil {
			return 0, "is not {\"partition\": string, \"offset\": number}"
		}
		if id.Partition == nil || id.Offset == nil {
			return 0, "lacks its partition or offset"
		}
		if *id.Partition != tp {
			return 0, "names partition " + strconv.Quote(truncate(*id.Partition, 60)) + ", not " + strconv.Quote(tp)
		}
		o := *id.Offset
		if len(o) > 0 && o[0] == '"' {
			var s string
			if err := json.Unmarshal(o, &s); err != nil {
				return 0, "has an offset that is not a number"
			}
			return ParseOffset(s)
		}
		return ParseOffset(string(o))
	}
	return 0, "is neither a string nor an object"
}

// parseDecimal parses a non-negative decimal offset.
func ParseOffset(s string) (int64, string) {
	bad := func() (int64, string) { return 0, strconv.Quote(truncate(s, 40)) + " is not a decimal offset" }
	if s == "" {
		return bad()
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return bad()
		}
	}
	off, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return bad()
	}
	return off, ""
}

// hasOffset reports whether a record of rs, in offset order, is at off.
func HasOffset(rs []handler.Record, off int64) bool {
	_, found := slices.BinarySearchFunc(rs, off, func(r handler.Record, off int64) int {
		switch {
		case r.Raw.Offset < off:
			return -1
		case r.Raw.Offset > off:
			return 1
		}
		return 0
	})
	return found
}

// FunctionError is a function's error: Lambda answered with
// X-Amz-Function-Error (an exception, a timeout, an out-of-memory exit),
// or an HTTP server with a 5xx and the same payload. The batch failed.
type FunctionError struct {
	// Function is the function's name as configured.
	Function string
	// Kind is X-Amz-Function-Error's value, such as Unhandled.
	Kind string
	// Type and Message are the payload's errorType and errorMessage,
	// when it has them.
	Type, Message string
	// Payload is the start of a payload that has neither, on one line.
	Payload string
}

// ParseFunctionError reads the payload of a function error of kind (the
// X-Amz-Function-Error value) from function.
func ParseFunctionError(function, kind string, payload []byte) *FunctionError {
	e := &FunctionError{Function: function, Kind: kind}
	var p struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(bytes.TrimSpace(payload), &p) == nil && (p.ErrorType != "" || p.ErrorMessage != "") {
		e.Type, e.Message = oneLine(p.ErrorType, 200), oneLine(p.ErrorMessage, 500)
	} else {
		e.Payload = oneLine(string(payload[:min(len(payload), 4096)]), 200)
	}
	return e
}

// Error returns one line such as `lambda function orders-fn: function
// error (Unhandled): ValueError: bad record 42`.
func (e *FunctionError) Error() string {
	var b strings.Builder
	b.WriteString("lambda function ")
	b.WriteString(e.Function)
	b.WriteString(": function error")
	if e.Kind != "" {
		b.WriteString(" (")
		b.WriteString(e.Kind)
		b.WriteString(")")
	}
	switch {
	case e.Type != "" && e.Message != "":
		b.WriteString(": " + e.Type + ": " + e.Message)
	case e.Type != "":
		b.WriteString(": " + e.Type)
	case e.Message != "":
		b.WriteString(": " + e.Message)
	case e.Payload != "":
		b.WriteString(": " + e.Payload)
	}
	return b.String()
}

// oneLine folds s onto one line of valid UTF-8 of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029'
	}), " ")
	return truncate(s, n)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
