package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A store under test, with a way to move its clock: a fake clock where
// expiry is checked by the client (Memory, DynamoDB), a real sleep where
// the server expires keys (Redis).
type storeUnderTest struct {
	store   Store
	advance func(time.Duration)
	prefix  string // unique to the test, so that runs never meet
}

// fakeClock is a clock moved by hand, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 22, 11, 30, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func uniquePrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// stores returns the stores to run a test against: Memory always, Redis
// with REDIS_TEST_URL (scripts/redis/up.sh), DynamoDB with
// DYNAMODB_TEST_ENDPOINT (moto, scripts/moto/up.sh).
func stores(t *testing.T) map[string]func(t *testing.T) storeUnderTest {
	t.Helper()
	m := map[string]func(t *testing.T) storeUnderTest{
		"memory": func(t *testing.T) storeUnderTest {
			c := newFakeClock()
			return storeUnderTest{store: NewMemory(c.Now), advance: c.Advance, prefix: uniquePrefix(t)}
		},
	}
	if url := os.Getenv("REDIS_TEST_URL"); url != "" {
		m["redis"] = func(t *testing.T) storeUnderTest {
			r, err := NewRedis(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return storeUnderTest{store: r, advance: time.Sleep, prefix: uniquePrefix(t)}
		}
	}
	if ep := os.Getenv("DYNAMODB_TEST_ENDPOINT"); ep != "" {
		m["dynamodb"] = func(t *testing.T) storeUnderTest {
			c := newFakeClock()
			d := &DynamoDB{api: testDynamoClient(ep), table: createTestTable(t, ep), now: c.Now}
			return storeUnderTest{store: d, advance: c.Advance, prefix: uniquePrefix(t)}
		}
	}
	return m
}

func testDynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// createTestTable creates a table from deploy/dynamodb/table.json, so the
// definition that ships is the one tested, under a name of its own.
func createTestTable(t *testing.T, endpoint string) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/dynamodb/table.json")
	if err != nil {
		t.Fatal(err)
	}
	var in dynamodb.CreateTableInput
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatalf("deploy/dynamodb/table.json: %v", err)
	}
	var def struct {
		AttributeDefinitions []struct{ AttributeName, AttributeType string }
		KeySchema            []struct{ AttributeName, KeyType string }
	}
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatal(err)
	}
	in.AttributeDefinitions, in.KeySchema = nil, nil
	for _, a := range def.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(a.AttributeName), AttributeType: types.ScalarAttributeType(a.AttributeType)})
	}
	for _, k := range def.KeySchema {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)})
	}
	name := uniquePrefix(t)
	in.TableName = aws.String(name)
	in.SSESpecification, in.Tags = nil, nil
	in.BillingMode = types.BillingModePayPerRequest
	cl := testDynamoClient(endpoint)
	ctx := context.Background()
	if _, err := cl.CreateTable(ctx, &in); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if _, err := cl.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{Enabled: aws.Bool(true), AttributeName: aws.String(attrExpiration)},
	}); err != nil {
		t.Fatalf("UpdateTimeToLive: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cl.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

func keysOf(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:orders:3:%d", prefix, i)
	}
	return keys
}

func all(n int, s State) []State {
	out := make([]State, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func begin(t *testing.T, s Store, keys []string, owner string, ttl time.Duration) []State {
	t.Helper()
	return beginAt(t, s, keys, nil, owner, ttl)
}

func beginAt(t *testing.T, s Store, keys, at []string, owner string, ttl time.Duration) []State {
	t.Helper()
	got, err := s.Begin(context.Background(), keys, at, owner, ttl)
	if err != nil {
		t.Fatalf("Begin(%s): %v", owner, err)
	}
	return got
}

// TestStoreProtocol runs the protocol every store must follow, on each
// store the environment names.
func TestStoreProtocol(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("claim, hold, complete", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				keys := keysOf(s.prefix, 3)
				if got := begin(t, s.store, keys, "a#1", time.Minute); !slices.Equal(got, all(3, Claimed)) {
					t.Fatalf("first Begin: got %v, want all claimed", got)
				}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, all(3, InProgress)) {
					t.Errorf("another owner: got %v, want all in progress", got)
				}
				if got := begin(t, s.store, keys, "a#1", time.Minute); !slices.Equal(got, all(3, Claimed)) {
					t.Errorf("the same owner again (a retried call): got %v, want all claimed", got)
				}
				if err := s.store.Complete(ctx, keys[:2], time.Hour); err != nil {
					t.Fatal(err)
				}
				want := []State{Completed, Completed, InProgress}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("after Complete of two: got %v, want %v", got, want)
				}
			})
			t.Run("release", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				keys := keysOf(s.prefix, 2)
				begin(t, s.store, keys, "a#1", time.Minute)
				if err := s.store.Release(ctx, keys, "b#1"); err != nil {
					t.Fatal(err)
				}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, all(2, InProgress)) {
					t.Errorf("after another owner's Release: got %v, want still in progress", got)
				}
				if err := s.store.Release(ctx, keys[:1], "a#1"); err != nil {
					t.Fatal(err)
				}
				want := []State{Claimed, InProgress}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("after the owner's Release of one: got %v, want %v", got, want)
				}
				if err := s.store.Complete(ctx, keys[:1], time.Hour); err != nil {
					t.Fatal(err)
				}
				if err := s.store.Release(ctx, keys[:1], "b#1"); err != nil {
					t.Fatal(err)
				}
				if got := begin(t, s.store, keys[:1], "c#1", time.Minute); got[0] != Completed {
					t.Errorf("Release of a completed key: got %v, want it still completed", got)
				}
			})
			t.Run("expiry", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				keys := keysOf(s.prefix, 2)
				// keys[0] is claimed for a short while; keys[1] completed for a short while.
				begin(t, s.store, keys[:1], "a#1", 1500*time.Millisecond)
				begin(t, s.store, keys[1:], "a#1", time.Minute)
				if err := s.store.Complete(ctx, keys[1:], 2*time.Second); err != nil {
					t.Fatal(err)
				}
				want := []State{InProgress, Completed}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, want) {
					t.Fatalf("before expiry: got %v, want %v", got, want)
				}
				s.advance(3100 * time.Millisecond)
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, all(2, Claimed)) {
					t.Errorf("after both expired: got %v, want both claimable", got)
				}
			})
			t.Run("dead-letter mark", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				// keys[0] a header key dead-lettered by the record at 0:7;
				// keys[1] an offset key (no at); keys[2] completed before
				// its Letter; keys[3] another owner's claim.
				keys := keysOf(s.prefix, 4)
				at := []string{"0:7", "", "0:9", "0:10"}
				if got := beginAt(t, s.store, keys[:3], at[:3], "a#1", time.Minute); !slices.Equal(got, all(3, Claimed)) {
					t.Fatalf("first Begin: got %v, want all claimed", got)
				}
				beginAt(t, s.store, keys[3:], at[3:], "b#1", time.Minute)
				if err := s.store.Complete(ctx, keys[2:3], time.Hour); err != nil {
					t.Fatal(err)
				}
				if err := s.store.Letter(ctx, keys, at, "a#1", time.Hour); err != nil {
					t.Fatal(err)
				}
				// The same records again (a redelivery): not handled again.
				want := []State{Completed, Completed, Completed, InProgress}
				if got := beginAt(t, s.store, keys, at, "c#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("the same records again: got %v, want %v", got, want)
				}
				// Another record with keys[0] (its redriven copy) is
				// claimed, and keys[2] stays completed.
				other := []string{"1:3", "", "1:4", "1:5"}
				want = []State{Claimed, Completed, Completed, InProgress}
				if got := beginAt(t, s.store, keys, other, "c#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("other records with the keys: got %v, want %v", got, want)
				}
				if got := beginAt(t, s.store, keys[:1], other[:1], "d#1", time.Minute); got[0] != InProgress {
					t.Errorf("the copy's key while claimed: got %v, want in progress", got[0])
				}
				// The copy handled: completed for every record.
				if err := s.store.Complete(ctx, keys[:1], time.Hour); err != nil {
					t.Fatal(err)
				}
				if err := s.store.Letter(ctx, keys[:1], at[:1], "c#1", time.Hour); err != nil {
					t.Fatal(err)
				}
				if got := beginAt(t, s.store, keys[:1], []string{"2:1"}, "d#1", time.Minute); got[0] != Completed {
					t.Errorf("after the copy was handled: got %v, want completed (a Letter never replaces it)", got[0])
				}
			})
			t.Run("renew", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				keys := keysOf(s.prefix, 3)
				begin(t, s.store, keys, "a#1", 2*time.Second)
				if err := s.store.Complete(ctx, keys[2:], time.Hour); err != nil {
					t.Fatal(err)
				}
				held, err := s.store.Renew(ctx, keys, "b#1", time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if want := []bool{false, false, false}; !slices.Equal(held, want) {
					t.Errorf("another owner's Renew: got %v, want %v", held, want)
				}
				for range 2 {
					s.advance(1500 * time.Millisecond)
					held, err := s.store.Renew(ctx, keys, "a#1", 2*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if want := []bool{true, true, false}; !slices.Equal(held, want) {
						t.Fatalf("the owner's Renew: got %v, want %v", held, want)
					}
				}
				// 3s after the claim, past its first expiry: still held.
				want := []State{InProgress, InProgress, Completed}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("after renewals past the first expiry: got %v, want %v", got, want)
				}
				s.advance(2100 * time.Millisecond)
				want = []State{Claimed, Claimed, Completed}
				if got := begin(t, s.store, keys, "b#1", time.Minute); !slices.Equal(got, want) {
					t.Errorf("once renewals stopped: got %v, want %v", got, want)
				}
				held, err = s.store.Renew(ctx, keys[:1], "a#1", time.Minute)
				if err != nil || held[0] {
					t.Errorf("Renew of a claim lost to another owner: got %v %v, want not held", held, err)
				}
			})
			t.Run("race: two members, one record", func(t *testing.T) {
				s := mk(t)
				const rounds, n = 20, 10
				for r := range rounds {
					keys := keysOf(fmt.Sprintf("%s:%d", s.prefix, r), n)
					var wg sync.WaitGroup
					got := make([][]State, 2)
					errs := make([]error, 2)
					for m := range 2 {
						wg.Go(func() {
							got[m], errs[m] = s.store.Begin(context.Background(), keys, nil, fmt.Sprintf("member-%d#%d", m, r), time.Minute)
						})
					}
					wg.Wait()
					for m := range 2 {
						if errs[m] != nil {
							t.Fatalf("round %d member %d: %v", r, m, errs[m])
						}
					}
					for i := range keys {
						claims := 0
						for m := range 2 {
							switch got[m][i] {
							case Claimed:
								claims++
							case InProgress:
							default:
								t.Errorf("round %d key %d member %d: got %v, want claimed or in progress", r, i, m, got[m][i])
							}
						}
						if claims != 1 {
							t.Errorf("round %d key %d: got %d members claiming it, want exactly 1", r, i, claims)
						}
					}
				}
			})
			t.Run("a batch larger than one call", func(t *testing.T) {
				s := mk(t)
				keys := keysOf(s.prefix, 520) // DynamoDB: 6 BatchGetItem, 21 BatchWriteItem
				if got := begin(t, s.store, keys, "a#1", time.Minute); !slices.Equal(got, all(len(keys), Claimed)) {
					t.Fatalf("got %v, want all claimed", got)
				}
				if err := s.store.Complete(context.Background(), keys[:300], time.Hour); err != nil {
					t.Fatal(err)
				}
				got := begin(t, s.store, keys, "b#1", time.Minute)
				want := append(all(300, Completed), all(220, InProgress)...)
				if !slices.Equal(got, want) {
					t.Errorf("got %v, want 300 completed then 220 in progress", got)
				}
			})
		})
	}
}

// TestStoreUnreachable checks that a store that cannot be reached answers
// every call with an error in bounded time, never a state.
func TestStoreUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A port nothing listens on: bind one, then close it.
	addr := closedAddr(t)
	r, err := NewRedis("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// One attempt per call: the SDK's own retries would only make the
	// test slower (the service bounds each call with its CallTimeout).
	api := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	d := &DynamoDB{api: api, table: "t", now: time.Now}
	for name, s := range map[string]Store{"redis": r, "dynamodb": d} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			if _, err := s.Begin(ctx, []string{"k"}, nil, "a#1", time.Minute); err == nil {
				t.Error("Begin: got nil error, want one")
			}
			if err := s.Complete(ctx, []string{"k"}, time.Hour); err == nil {
				t.Error("Complete: got nil error, want one")
			}
			if err := s.Release(ctx, []string{"k"}, "a#1"); err == nil {
				t.Error("Release: got nil error, want one")
			}
			if err := s.Letter(ctx, []string{"k"}, nil, "a#1", time.Hour); err == nil {
				t.Error("Letter: got nil error, want one")
			}
			if _, err := s.Renew(ctx, []string{"k"}, "a#1", time.Minute); err == nil {
				t.Error("Renew: got nil error, want one")
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s, want the errors within seconds", d)
			}
		})
	}
}
