package idempotency

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
)

// DynamoDB is a Store on a DynamoDB table (IDEMPOTENCY_TABLE) whose
// partition key is the string attribute "id" (deploy/dynamodb/table.json).
// An item holds:
//
//	id                      the record key
//	status                  INPROGRESS, COMPLETED or DEADLETTERED
//	owner                   the claiming batch, while INPROGRESS
//	expiration              Unix seconds: the table's TTL attribute
//	in_progress_expiration  Unix milliseconds: when a claim lapses
//	dead_lettered_record    with DEADLETTERED: the record dead-lettered
//	                        (Guard.At; absent for offset keys)
//
// The same names as Powertools for AWS Lambda's idempotency utility, and
// DEADLETTERED of our own.
// DynamoDB's TTL deletes expired items only eventually, so every read
// compares the expiries with the clock itself.
//
// Begin reads the keys with strongly consistent BatchGetItem calls (100 keys
// each, in parallel: one round trip for a batch of up to 100 records) and
// claims the free ones with conditional PutItems, each on condition that
// the item is still free, so that two members never both claim a key; up
// to 32 go at once. A key whose condition failed (another member got
// there first) is read again. DynamoDB has no batched conditional write
// but TransactWriteItems, which costs twice the write capacity, fails
// whole on one conflict, and which moto (the emulator this is tested on)
// applies in time proportional to the table's size per item. Complete
// writes with BatchWriteItem (25 items each, in parallel); Letter and Renew
// put conditionally (as Begin's claims, up to 32 at once), and Release
// deletes conditionally, one key a call: the table needs no permission but
// BatchGetItem, PutItem, BatchWriteItem and DeleteItem.
type DynamoDB struct {
	api   dynamoAPI
	table string
	now   func() time.Time
}

// dynamoAPI is the part of the DynamoDB client the store uses.
type dynamoAPI interface {
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// The item's attributes and statuses.
const (
	attrID         = "id"
	attrStatus     = "status"
	attrOwner      = "owner"
	attrExpiration = "expiration"
	attrInProgress = "in_progress_expiration"
	attrRecord     = "dead_lettered_record"

	statusInProgress = "INPROGRESS"
	statusCompleted  = "COMPLETED"
	statusLettered   = "DEADLETTERED"
)

// DynamoDB's limits per call.
const (
	maxBatchGet     = 100
	maxBatchWrite   = 25
	maxParallel     = 8  // batch calls of one Store call in flight at once
	maxParallelPuts = 32 // conditional PutItems of one Begin in flight at once
	maxRounds       = 5  // retries of unprocessed items, or of claims lost to a race, within one call
)

// NewDynamoDB returns the store on table, with the AWS default credential
// chain and endpoint settings (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL)
// and region (AWS_REGION, else the SDK's own resolution when region is "").
// Nothing is dialled until the first call.
func NewDynamoDB(ctx context.Context, table, region string) (*DynamoDB, error) {
	var lo []func(*awsconfig.LoadOptions) error
	if region != "" {
		lo = append(lo, awsconfig.WithRegion(region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for the DynamoDB idempotency table: %w", err)
	}
	return &DynamoDB{api: dynamodb.NewFromConfig(ac), table: table, now: time.Now}, nil
}

// Begin implements Store.
func (d *DynamoDB) Begin(ctx context.Context, keys, at []string, owner string, ttl time.Duration) ([]State, error) {
	states := make([]State, len(keys))
	index := make(map[string]int, len(keys))
	atKey := func(k string) string { return atOf(at, index[k]) }
	for i, k := range keys {
		index[k] = i
	}
	todo := keys
	for round := 0; len(todo) > 0; round++ {
		if round == maxRounds {
			return nil, fmt.Errorf("%d keys still contended after %d rounds", len(todo), round)
		}
		items, err := d.read(ctx, todo)
		if err != nil {
			return nil, err
		}
		now := d.now()
		var free []string
		for _, k := range todo {
			switch st := stateOf(items[k], owner, atKey(k), now); st {
			case Claimed:
				free = append(free, k)
			default:
				states[index[k]] = st
			}
		}
		lost, err := d.claim(ctx, free, atKey, owner, ttl, now)
		if err != nil {
			return nil, err
		}
		for _, k := range free {
			states[index[k]] = Claimed
		}
		todo = lost // read again: someone else claimed or completed them
	}
	return states, nil
}

// stateOf is what an item (nil: none) means for owner and the record at
// at, at now: Claimed when it is free to claim.
func stateOf(item map[string]types.AttributeValue, owner, at string, now time.Time) State {
	if item == nil {
		return Claimed
	}
	switch str(item[attrStatus]) {
	case statusCompleted:
		if num(item[attrExpiration]) > now.Unix() {
			return Completed
		}
	case statusLettered:
		if num(item[attrExpiration]) > now.Unix() && str(item[attrRecord]) == at {
			return Completed
		}
	case statusInProgress:
		if str(item[attrOwner]) != owner && num(item[attrInProgress]) > now.UnixMilli() {
			return InProgress
		}
	}
	return Claimed
}

// read returns the items of keys that exist, by key.
func (d *DynamoDB) read(ctx context.Context, keys []string) (map[string]map[string]types.AttributeValue, error) {
	var mu sync.Mutex
	items := make(map[string]map[string]types.AttributeValue, len(keys))
	err := chunks(len(keys), maxBatchGet, func(lo, hi int) error {
		req := map[string]types.KeysAndAttributes{d.table: {
			Keys:                     keyList(keys[lo:hi]),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("#i, #s, #o, #e, #p, #r"),
			ExpressionAttributeNames: exprNames,
		}}
		for round := 0; len(req) > 0; round++ {
			if round == maxRounds {
				return errors.New("BatchGetItem: keys left unprocessed (throttled)")
			}
			if round > 0 {
				if err := backoff.Sleep(ctx, unprocessedWait(round)); err != nil {
					return err
				}
			}
			out, err := d.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return err
			}
			mu.Lock()
			for _, it := range out.Responses[d.table] {
				items[str(it[attrID])] = it
			}
			mu.Unlock()
			req = out.UnprocessedKeys
		}
		return nil
	})
	return items, err
}

var exprNames = map[string]string{
	"#i": attrID, "#s": attrStatus, "#o": attrOwner, "#e": attrExpiration, "#p": attrInProgress, "#r": attrRecord,
}

// claim writes the in-progress item of each key, on condition that it is
// still free (conditional PutItem, up to maxParallelPuts at once), and
// returns the keys whose condition failed: another member claimed or
// completed them since they were read. A key dead-lettered by another
// record than at(key) is free.
func (d *DynamoDB) claim(ctx context.Context, keys []string, at func(string) string, owner string, ttl time.Duration, now time.Time) ([]string, error) {
	until := now.Add(ttl)
	vals := map[string]types.AttributeValue{
		":ip":    &types.AttributeValueMemberS{Value: statusInProgress},
		":c":     &types.AttributeValueMemberS{Value: statusCompleted},
		":l":     &types.AttributeValueMemberS{Value: statusLettered},
		":me":    &types.AttributeValueMemberS{Value: owner},
		":nowS":  numAttr(now.Unix()),
		":nowMS": numAttr(now.UnixMilli()),
	}
	const free = "attribute_not_exists(#i) OR (#s IN (:c, :l) AND #e <= :nowS) OR (#s = :ip AND (#p <= :nowMS OR #o = :me))"
	// Another record's dead letter: one with a record named, when this one
	// has none; otherwise one naming another.
	condNone := aws.String(free + " OR (#s = :l AND attribute_exists(#r))")
	condAt := aws.String(free + " OR (#s = :l AND (attribute_not_exists(#r) OR #r <> :at))")
	return d.putEach(ctx, keys, func(k string) *dynamodb.PutItemInput {
		in := &dynamodb.PutItemInput{
			TableName:                 aws.String(d.table),
			Item:                      inProgressItem(k, owner, until),
			ConditionExpression:       condNone,
			ExpressionAttributeNames:  exprNames,
			ExpressionAttributeValues: vals,
		}
		if a := at(k); a != "" {
			in.ConditionExpression = condAt
			in.ExpressionAttributeValues = maps.Clone(vals)
			in.ExpressionAttributeValues[":at"] = &types.AttributeValueMemberS{Value: a}
		}
		return in
	})
}

// inProgressItem is key's item while owner holds it, until until.
func inProgressItem(key, owner string, until time.Time) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrID:         &types.AttributeValueMemberS{Value: key},
		attrStatus:     &types.AttributeValueMemberS{Value: statusInProgress},
		attrOwner:      &types.AttributeValueMemberS{Value: owner},
		attrExpiration: numAttr(until.Add(time.Second - 1).Unix()),
		attrInProgress: numAttr(until.UnixMilli()),
	}
}

// putEach makes the conditional PutItem in(key) of each key, up to
// maxParallelPuts at once, and returns the keys whose condition failed.
func (d *DynamoDB) putEach(ctx context.Context, keys []string, in func(key string) *dynamodb.PutItemInput) ([]string, error) {
	var (
		mu     sync.Mutex
		failed []string
	)
	err := parallel(len(keys), 1, maxParallelPuts, func(lo, _ int) error {
		_, err := d.api.PutItem(ctx, in(keys[lo]))
		if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
			mu.Lock()
			failed = append(failed, keys[lo])
			mu.Unlock()
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return failed, nil
}

// Complete implements Store.
func (d *DynamoDB) Complete(ctx context.Context, keys []string, ttl time.Duration) error {
	exp := numAttr(d.now().Add(ttl).Unix())
	return chunks(len(keys), maxBatchWrite, func(lo, hi int) error {
		reqs := make([]types.WriteRequest, 0, hi-lo)
		for _, k := range keys[lo:hi] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				attrID:         &types.AttributeValueMemberS{Value: k},
				attrStatus:     &types.AttributeValueMemberS{Value: statusCompleted},
				attrExpiration: exp,
			}}})
		}
		req := map[string][]types.WriteRequest{d.table: reqs}
		for round := 0; len(req) > 0; round++ {
			if round == maxRounds {
				return errors.New("BatchWriteItem: items left unprocessed (throttled)")
			}
			if round > 0 {
				if err := backoff.Sleep(ctx, unprocessedWait(round)); err != nil {
					return err
				}
			}
			out, err := d.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return err
			}
			req = out.UnprocessedItems
		}
		return nil
	})
}

// Letter implements Store.
func (d *DynamoDB) Letter(ctx context.Context, keys, at []string, owner string, ttl time.Duration) error {
	now := d.now()
	exp := numAttr(now.Add(ttl).Unix())
	vals := map[string]types.AttributeValue{
		":ip":    &types.AttributeValueMemberS{Value: statusInProgress},
		":c":     &types.AttributeValueMemberS{Value: statusCompleted},
		":l":     &types.AttributeValueMemberS{Value: statusLettered},
		":me":    &types.AttributeValueMemberS{Value: owner},
		":nowS":  numAttr(now.Unix()),
		":nowMS": numAttr(now.UnixMilli()),
	}
	names := map[string]string{"#i": attrID, "#s": attrStatus, "#o": attrOwner, "#e": attrExpiration, "#p": attrInProgress}
	cond := aws.String("attribute_not_exists(#i) OR #s = :l OR (#s = :c AND #e <= :nowS) OR (#s = :ip AND (#o = :me OR #p <= :nowMS))")
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		index[k] = i
	}
	_, err := d.putEach(ctx, keys, func(k string) *dynamodb.PutItemInput {
		item := map[string]types.AttributeValue{
			attrID:         &types.AttributeValueMemberS{Value: k},
			attrStatus:     &types.AttributeValueMemberS{Value: statusLettered},
			attrExpiration: exp,
		}
		if a := atOf(at, index[k]); a != "" {
			item[attrRecord] = &types.AttributeValueMemberS{Value: a}
		}
		return &dynamodb.PutItemInput{
			TableName: aws.String(d.table), Item: item, ConditionExpression: cond,
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		}
	})
	return err // a failed condition: completed, or another owner's
}

// Renew implements Store: it puts each claim again, with the new expiry,
// on condition that it is still owner's and unexpired.
func (d *DynamoDB) Renew(ctx context.Context, keys []string, owner string, ttl time.Duration) ([]bool, error) {
	now := d.now()
	until := now.Add(ttl)
	vals := map[string]types.AttributeValue{
		":ip":    &types.AttributeValueMemberS{Value: statusInProgress},
		":me":    &types.AttributeValueMemberS{Value: owner},
		":nowMS": numAttr(now.UnixMilli()),
	}
	names := map[string]string{"#s": attrStatus, "#o": attrOwner, "#p": attrInProgress}
	cond := aws.String("#s = :ip AND #o = :me AND #p > :nowMS")
	lost, err := d.putEach(ctx, keys, func(k string) *dynamodb.PutItemInput {
		return &dynamodb.PutItemInput{
			TableName: aws.String(d.table), Item: inProgressItem(k, owner, until), ConditionExpression: cond,
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		}
	})
	if err != nil {
		return nil, err
	}
	gone := make(map[string]bool, len(lost))
	for _, k := range lost {
		gone[k] = true
	}
	held := make([]bool, len(keys))
	for i, k := range keys {
		held[i] = !gone[k]
	}
	return held, nil
}

// Release implements Store.
func (d *DynamoDB) Release(ctx context.Context, keys []string, owner string) error {
	return chunks(len(keys), 1, func(lo, _ int) error {
		_, err := d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                aws.String(d.table),
			Key:                      map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: keys[lo]}},
			ConditionExpression:      aws.String("#s = :ip AND #o = :me"),
			ExpressionAttributeNames: map[string]string{"#s": attrStatus, "#o": attrOwner},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":ip": &types.AttributeValueMemberS{Value: statusInProgress},
				":me": &types.AttributeValueMemberS{Value: owner},
			},
		})
		if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
			return nil // not ours any more
		}
		return err
	})
}

// Close implements Store.
func (d *DynamoDB) Close() error { return nil }

// chunks calls fn for each chunk [lo, hi) of n items of at most size, up to
// maxParallel at once, and returns their errors joined.
func chunks(n, size int, fn func(lo, hi int) error) error {
	return parallel(n, size, maxParallel, fn)
}

// parallel is chunks with up to limit calls at once.
func parallel(n, size, limit int, fn func(lo, hi int) error) error {
	if n <= size {
		if n == 0 {
			return nil
		}
		return fn(0, n)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, limit)
	)
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(lo, hi); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unprocessedWait is the wait before retry round n of unprocessed items:
// 50ms, 100ms, ...
func unprocessedWait(n int) time.Duration { return time.Duration(25<<n) * time.Millisecond }

func keyList(keys []string) []map[string]types.AttributeValue {
	out := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		out[i] = map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: k}}
	}
	return out
}

func numAttr(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(n.Value, 10, 64)
		return i
	}
	return 0
}

// Ping reads one key that is never written, with the permission and the
// table Begin uses: `consumer check`'s test of the store.
func (d *DynamoDB) Ping(ctx context.Context) error {
	_, err := d.read(ctx, []string{"msk-consumer-check"})
	return err
}
