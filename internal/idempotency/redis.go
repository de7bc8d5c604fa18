package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a Store on Redis or Valkey (ElastiCache included), 7.0 or later
// (SET with NX and GET together). An entry is a string key with an expiry:
// "p:<owner>" while in progress, "c" once completed. Each call is one
// pipeline, one round trip: SET NX GET PX per key for Begin, SET PX for
// Complete, a compare-and-delete script per key for Release. Every command
// names a single key, so that a cluster client could route them; this one
// connects to a single endpoint (a primary, or a cluster's configuration
// endpoint in proxy mode).
type Redis struct {
	c *redis.Client
}

const (
	redisCompleted  = "c"
	redisInProgress = "p:"
)

// releaseScript deletes KEYS[1] if it is still ARGV[1]'s claim.
const releaseScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// NewRedis connects to the Redis at url (REDIS_URL): redis:// or, for
// TLS, rediss://, with user and password in the userinfo and the database
// as the path, e.g. rediss://consumer:secret@master.example.cache.amazonaws.com:6379/0.
// Nothing is dialled until the first call.
func NewRedis(url string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 3 * time.Second
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 3 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 3 * time.Second
	}
	// The caller retries every failed call without limit; one quick retry
	// here covers a connection the server closed while idle.
	opt.MaxRetries = 1
	opt.ClientName = "msk-consumer"
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &Redis{c: redis.NewClient(opt)}, nil
}

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, keys []string, owner string, ttl time.Duration) ([]State, error) {
	mine := redisInProgress + owner
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	pipe := r.c.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Do(ctx, "set", k, mine, "px", ms, "nx", "get")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	states := make([]State, len(keys))
	for i, cmd := range cmds {
		old, err := cmd.Text()
		switch {
		case errors.Is(err, redis.Nil), err == nil && old == mine:
			states[i] = Claimed
		case err != nil:
			return nil, err
		case old == redisCompleted:
			states[i] = Completed
		default:
			states[i] = InProgress
		}
	}
	return states, nil
}

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, keys []string, ttl time.Duration) error {
	pipe := r.c.Pipeline()
	for _, k := range keys {
		pipe.Set(ctx, k, redisCompleted, ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, keys []string, owner string) error {
	pipe := r.c.Pipeline()
	for _, k := range keys {
		pipe.Eval(ctx, releaseScript, []string{k}, redisInProgress+owner)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Close implements Store.
func (r *Redis) Close() error { return r.c.Close() }

// Ping asks the server for PONG: `consumer check`'s test of the store.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }
