package kafkaclienttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// IsolateAWS makes the AWS default chain see only what the test sets: no
// shared files, no IMDS.
func IsolateAWS(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
	}
}

// SetStaticCreds puts credentials in the environment, where the AWS
// default chain looks first.
func SetStaticCreds(t testing.TB, keyID, secret, session string) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", session)
}

// STS answers AssumeRole like AWS STS: with the temporary credentials
// STSKeyID, STSSecret and STSSession, or with the error code Deny names.
type STS struct {
	srv      *httptest.Server
	mu       sync.Mutex
	sessions []string // RoleSessionName of each call
	roles    []string // RoleArn of each call
	deny     string
}

// NewSTS starts the fake and points the AWS SDK's STS client at it
// (AWS_ENDPOINT_URL_STS) for the rest of the test.
func NewSTS(t testing.TB) *STS {
	t.Helper()
	f := &STS{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.sessions = append(f.sessions, r.Form.Get("RoleSessionName"))
		f.roles = append(f.roles, r.Form.Get("RoleArn"))
		deny := f.deny
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if deny != "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, deny)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/consumer/%s</Arn><AssumedRoleId>AROATEST:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			STSKeyID, STSSecret, STSSession, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"))
	}))
	t.Cleanup(f.srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", f.srv.URL)
	return f
}

// Deny makes every AssumeRole call fail with the AWS error code code (such
// as InvalidClientTokenId); "" lets them succeed again.
func (f *STS) Deny(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deny = code
}

// Calls returns the RoleArn and RoleSessionName of every AssumeRole call.
func (f *STS) Calls() (roles, sessions []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.roles), slices.Clone(f.sessions)
}
