package service

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/status"
)

const statusSynopsis = "status [--url URL] [--output text|json] [--timeout 5s]\n\n" +
	"Prints a running service's status page for a terminal: group, member and generation; per\n" +
	"partition its offsets, lag in records and in time, lanes and batches in flight; every stall\n" +
	"with the reason /readyz gives; the last dead letters. Exit 0 if the service is ready, 1 if it\n" +
	"is not (the page is printed) or does not answer."

// statusCommand is `consumer status`: /status.json of a running service,
// by default this host's (METRICS_ADDR), printed for a terminal.
func (a *app) statusCommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlags("status", statusSynopsis, stderr)
	base := fs.String("url", "", "the service's METRICS_ADDR as a URL (http://10.0.1.23:9090), with any path prefix in front of it (http://host/ops/consumer), or its status.json; default this host's METRICS_ADDR")
	timeout := fs.Duration("timeout", 5*time.Second, "how long the request may take")
	output := outputFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	asJSON, ok := jsonOutput(*output, stderr)
	if !ok {
		return exitConfig
	}
	u, err := statusURL(*base, lookup)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(u)
	if err != nil {
		fmt.Fprintln(stderr, "cannot read the status page:", err)
		return exitRuntime
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the status page %s: %v\n", u, err)
		return exitRuntime
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "status page %s: %s: %.200s\n", u, resp.Status, body)
		return exitRuntime
	}
	var v status.View
	if err := json.Unmarshal(body, &v); err != nil {
		fmt.Fprintf(stderr, "status page %s: not a status document: %v\n", u, err)
		return exitRuntime
	}
	if asJSON {
		writeJSON(stdout, v)
	} else {
		status.WriteText(stdout, v)
	}
	if !v.Ready {
		return exitRuntime
	}
	return exitOK
}

// statusURL returns the URL of status.json: from --url (a base, to which
// status.json is added, or status.json itself), else this host's
// METRICS_ADDR (0.0.0.0 and :: read as the loopback address).
func statusURL(flagURL string, lookup func(string) (string, bool)) (string, error) {
	if flagURL != "" {
		u, err := url.Parse(flagURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--url %q: expected an http:// or https:// URL with a host", flagURL)
		}
		if !strings.HasSuffix(u.Path, "/status.json") {
			u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/status") + "/status.json"
		}
		return u.String(), nil
	}
	addr, ok := lookup("METRICS_ADDR")
	if !ok || addr == "" {
		addr = config.DefaultMetricsAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR=%q: %v", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/status.json", nil
}
