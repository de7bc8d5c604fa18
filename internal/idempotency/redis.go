package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a Store on Redis or Valkey (ElastiCache included), 7.0 or later
// (SET with NX and GET together). An entry is a string key with an expiry:
// "p:<owner>" while in progress, "c" once completed, "l:<at>" once
// dead-lettered by the record at <at>. Each call is one pipeline, one round
// trip: SET NX GET PX per key for Begin (and, for a key another record
// dead-lettered, a compare-and-set script to claim it, a second round trip
// for those only), SET PX for Complete, a script per key for Letter, Renew
// (compare-and-PEXPIRE) and Release (compare-and-delete). Every command
// names a single key, so that a cluster client could route them; this one
// connects to a single endpoint (a primary, or a cluster's configuration
// endpoint in proxy mode).
type Redis struct {
	c *redis.Client
}

const (
	redisCompleted  = "c"
	redisInProgress = "p:"
	redisLettered   = "l:"
)

// releaseScript deletes KEYS[1] if it is still ARGV[1]'s claim.
const releaseScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// renewScript sets KEYS[1] to expire in ARGV[2] ms if it is still ARGV[1]'s
// claim, and returns 1 if it was.
const renewScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`

// takeScript sets KEYS[1] to ARGV[2] for ARGV[3] ms if it still holds
// ARGV[1] (another record's dead-letter mark), and returns 1 if it did.
const takeScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) return 1 end return 0`

// letterScript sets KEYS[1] to ARGV[2] for ARGV[3] ms unless it is
// completed or another owner's claim (ARGV[1] is the caller's).
const letterScript = `local v = redis.call("GET", KEYS[1])
if v == false or v == ARGV[1] or string.sub(v, 1, 2) == "l:" then redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) return 1 end
return 0`

// maxRedisRounds bounds the rounds of a Begin whose keys other records'
// dead-letter marks held and that changed in between.
const maxRedisRounds = 5

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
func (r *Redis) Begin(ctx context.Context, keys, at []string, owner string, ttl time.Duration) ([]State, error) {
	mine := redisInProgress + owner
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	states := make([]State, len(keys))
	todo := make([]int, len(keys)) // indexes in keys
	for i := range todo {
		todo[i] = i
	}
	for round := 0; len(todo) > 0; round++ {
		if round == maxRedisRounds {
			return nil, fmt.Errorf("%d keys still contended after %d rounds", len(todo), round)
		}
		pipe := r.c.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for j, i := range todo {
			cmds[j] = pipe.Do(ctx, "set", keys[i], mine, "px", ms, "nx", "get")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		var take []int // keys another record dead-lettered: claim them if still so
		var olds []string
		for j, cmd := range cmds {
			i := todo[j]
			old, err := cmd.Text()
			switch {
			case errors.Is(err, redis.Nil), err == nil && old == mine:
				states[i] = Claimed
			case err != nil:
				return nil, err
			case old == redisCompleted, old == redisLettered+atOf(at, i):
				states[i] = Completed
			case strings.HasPrefix(old, redisLettered):
				take = append(take, i)
				olds = append(olds, old)
			default:
				states[i] = InProgress
			}
		}
		if len(take) == 0 {
			break
		}
		pipe = r.c.Pipeline()
		tcmds := make([]*redis.Cmd, len(take))
		for j, i := range take {
			tcmds[j] = pipe.Eval(ctx, takeScript, []string{keys[i]}, olds[j], mine, ms)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		todo = todo[:0]
		for j, cmd := range tcmds {
			n, err := cmd.Int()
			if err != nil {
				return nil, err
			}
			if n == 1 {
				states[take[j]] = Claimed
			} else {
				todo = append(todo, take[j]) // changed since: look again
			}
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

// Letter implements Store.
func (r *Redis) Letter(ctx context.Context, keys, at []string, owner string, ttl time.Duration) error {
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	pipe := r.c.Pipeline()
	for i, k := range keys {
		pipe.Eval(ctx, letterScript, []string{k}, redisInProgress+owner, redisLettered+atOf(at, i), ms)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Renew implements Store.
func (r *Redis) Renew(ctx context.Context, keys []string, owner string, ttl time.Duration) ([]bool, error) {
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	pipe := r.c.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Eval(ctx, renewScript, []string{k}, redisInProgress+owner, ms)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	held := make([]bool, len(keys))
	for i, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			return nil, err
		}
		held[i] = n == 1
	}
	return held, nil
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
