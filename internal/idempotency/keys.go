package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Keys builds record keys. With IDEMPOTENCY_KEY=offset (Header empty) a
// record's key is
//
//	<prefix>:<topic>:<partition>:<offset>
//
// which names one record for as long as its topic exists: a topic deleted
// and created again reuses offsets, so change the prefix then (or wait out
// IDEMPOTENCY_TTL). With IDEMPOTENCY_KEY=header:NAME it is
//
//	<prefix>:<topic>:h:<value of the header NAME>
//
// so that the same message produced twice (a producer's retry, a replay)
// is handled once. A header value that is not UTF-8 (DynamoDB keys are
// strings) or longer than MaxHeaderKeyBytes (DynamoDB's key limit is 2048
// bytes) is replaced by "sha256:" and its hash in hex. Topic names cannot
// hold ':', and partitions are numbers, so the two forms never meet.
type Keys struct {
	Prefix string
	Header string
}

// MaxHeaderKeyBytes is the longest header value used as it is in a key.
const MaxHeaderKeyBytes = 512

// Key returns r's key, or "" when the key is a header r does not have (or
// has empty). Where the header appears more than once, the last counts, as
// the HTTP handler's headers do.
func (k Keys) Key(r *kgo.Record) string {
	if k.Header == "" {
		b := make([]byte, 0, len(k.Prefix)+len(r.Topic)+24)
		b = append(b, k.Prefix...)
		b = append(b, ':')
		b = append(b, r.Topic...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.Partition), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, r.Offset, 10)
		return string(b)
	}
	var val []byte
	found := false
	for _, h := range r.Headers {
		if h.Key == k.Header {
			val, found = h.Value, true
		}
	}
	if !found || len(val) == 0 {
		return ""
	}
	id := string(val)
	if len(val) > MaxHeaderKeyBytes || !utf8.Valid(val) {
		sum := sha256.Sum256(val)
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	return k.Prefix + ":" + r.Topic + ":h:" + id
}
