package codec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	brokenAvro := filepath.Join(dir, "broken.avsc")
	if err := os.WriteFile(brokenAvro, []byte(`{"type": "record", "name": "P", "fields": [{"name": "id"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.avsc")
	const protoSet = "testdata/product.pb"

	avroFile := func(path string) config.Codec {
		return config.Codec{Format: config.FormatAvro, SchemaFile: path, Registry: config.RegistryNone}
	}
	proto := func(path, msg string) config.Codec {
		return config.Codec{Format: config.FormatProtobuf, SchemaFile: path, ProtoMessage: msg, Registry: config.RegistryNone}
	}
	stringKey := config.Codec{Format: config.FormatString, Registry: config.RegistryNone}
	jsonValue := config.Codec{Format: config.FormatJSON, Registry: config.RegistryNone}

	tests := []struct {
		name     string
		key      config.Codec
		value    config.Codec
		want     []string // the variables reported, in order
		contains []string // fragments of Error()
	}{
		{name: "defaults", key: stringKey, value: jsonValue},
		{name: "avro schema file", key: stringKey, value: avroFile(productSchemaFile)},
		{name: "protobuf message", key: proto(protoSet, "shop.v1.ProductKey"), value: proto(protoSet, "shop.v1.Product")},
		{name: "registries are not consulted", key: config.Codec{Format: config.FormatProtobuf, Registry: config.RegistryConfluent},
			value: config.Codec{Format: config.FormatAvro, Registry: config.RegistryGlue}},
		{name: "broken avsc", key: stringKey, value: avroFile(brokenAvro), want: []string{"VALUE_SCHEMA_FILE"},
			contains: []string{`VALUE_SCHEMA_FILE="` + brokenAvro + `": expected an Avro schema (.avsc) that parses: `}},
		{name: "broken reader schema with a registry", key: stringKey,
			value: config.Codec{Format: config.FormatAvro, SchemaFile: brokenAvro, Registry: config.RegistryConfluent}, want: []string{"VALUE_SCHEMA_FILE"}},
		{name: "avsc missing", key: stringKey, value: avroFile(missing), want: []string{"VALUE_SCHEMA_FILE"}, contains: []string{"no such file"}},
		{name: "proto message not in set", key: proto(protoSet, "shop.v1.Missing"), value: jsonValue, want: []string{"KEY_PROTO_MESSAGE"},
			contains: []string{`KEY_PROTO_MESSAGE="shop.v1.Missing": expected the full name of a message in KEY_SCHEMA_FILE: `, "not found"}},
		{name: "proto name of an enum", key: stringKey, value: proto(protoSet, "shop.v1.Product.Status"), want: []string{"VALUE_PROTO_MESSAGE"}, contains: []string{"is not a message"}},
		{name: "not a descriptor set", key: stringKey, value: proto(productSchemaFile, "shop.v1.Product"), want: []string{"VALUE_SCHEMA_FILE"},
			contains: []string{"expected a binary FileDescriptorSet"}},
		{name: "both sides, in the contract's order", key: proto(protoSet, "shop.v1.Missing"), value: avroFile(brokenAvro),
			want: []string{"VALUE_SCHEMA_FILE", "KEY_PROTO_MESSAGE"}},
		{name: "unknown format", key: config.Codec{Format: "uuid", Registry: config.RegistryNone}, value: jsonValue, want: []string{"KEY_FORMAT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(config.Config{Key: tt.key, Value: tt.value})
			var got []string
			if err != nil {
				errs, ok := err.(config.Errors)
				if !ok {
					t.Fatalf("got %T, want config.Errors", err)
				}
				for _, p := range errs {
					got = append(got, p.Var)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got problems %q, want %q\n%v", got, tt.want, err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("got %q, want it to contain %q", err.Error(), c)
				}
			}
		})
	}
}
