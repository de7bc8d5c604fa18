package framing_test

import (
	"fmt"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

func ExampleUnframe() {
	// A Protobuf value as a Confluent serializer writes it: magic byte,
	// schema id 7, the message-index array [0] (written as count 0), then
	// the message.
	raw := []byte{0, 0, 0, 0, 7, 0, 0x08, 0x01}
	fr, err := framing.Unframe(config.RegistryConfluent, config.FormatProtobuf, raw, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fr.SchemaRef(), fr.Indexes, fr.Payload)

	_, err = framing.Unframe(config.RegistryConfluent, config.FormatProtobuf, raw[:3], 0)
	fmt.Println(err)
	// Output:
	// 7 [0] [8 1]
	// malformed confluent framing: 3 bytes, shorter than the 5-byte header
}
