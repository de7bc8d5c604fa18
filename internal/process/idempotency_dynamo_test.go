package process

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/msk-consumer/msk-consumer/internal/idempotency"
)

// benchDynamo creates a table on the emulator at endpoint and returns the
// store on it, built from the SDK's environment settings
// (AWS_ENDPOINT_URL_DYNAMODB) as the service builds it.
func benchDynamo(b *testing.B, endpoint string) idempotency.Store {
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	b.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	table := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	cl := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := cl.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		b.Fatal(err)
	}
	s, err := idempotency.NewDynamoDB(ctx, table, "us-east-1")
	if err != nil {
		b.Fatal(err)
	}
	return s
}
