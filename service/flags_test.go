package service

import (
	"context"
	"strings"
	"testing"
	"time"
)

// everyCommand is every command of the binary, as its arguments.
var everyCommand = [][]string{
	{"run"}, {"demo"}, {"healthcheck"}, {"config"}, {"version"},
	{"check"}, {"redrive"}, {"offsets"}, {"offsets", "reset"},
}

// runIn runs args with an empty environment and a deadline, so that a
// command that starts when it should not (the demo) cannot hang the test.
func runIn(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	code = Run(ctx, Env{Args: args, Lookup: func(string) (string, bool) { return "", false }, Stdout: &out, Stderr: &errOut}, testHandlers)
	return code, out.String(), errOut.String()
}

// TestHelpFlagNeverStarts checks -h and --help on every command: exit 0,
// the command's usage, and nothing started (the demo's banner, run's or
// config's configuration problems, a connection).
func TestHelpFlagNeverStarts(t *testing.T) {
	for _, cmd := range everyCommand {
		for _, h := range []string{"-h", "--help", "-help"} {
			args := append(append([]string{}, cmd...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, errOut := runIn(t, args...)
				all := out + errOut
				if code != exitOK {
					t.Errorf("got exit %d, want 0\n%s", code, all)
				}
				if want := "usage: consumer " + strings.Join(cmd, " "); !strings.Contains(all, want) {
					t.Errorf("got\n%s\nwant %q in it", all, want)
				}
				for _, never := range []string{"msk-consumer demo", "invalid configuration:", "KAFKA_BROKERS=", "consumer dev"} {
					if strings.Contains(all, never) {
						t.Errorf("got %q in the output, want the command not started:\n%s", never, all)
					}
				}
			})
		}
	}
}

// TestUnknownFlag checks that every command refuses a flag it does not
// define with exit 2, before it starts.
func TestUnknownFlag(t *testing.T) {
	for _, cmd := range append(everyCommand, []string{}) {
		args := append(append([]string{}, cmd...), "--no-such-flag")
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runIn(t, args...)
			if code != exitConfig || !strings.Contains(errOut, "flag provided but not defined: -no-such-flag") {
				t.Errorf("got exit %d and\n%s%s\nwant 2 naming the flag", code, out, errOut)
			}
			if strings.Contains(out+errOut, "msk-consumer demo") || strings.Contains(out+errOut, "invalid configuration:") {
				t.Errorf("the command started:\n%s%s", out, errOut)
			}
		})
	}
}

// TestUnexpectedArgument checks that a command without arguments refuses
// one (a misplaced flag value, a second command) rather than ignore it.
func TestUnexpectedArgument(t *testing.T) {
	for _, cmd := range []string{"run", "demo", "healthcheck", "config", "version"} {
		t.Run(cmd, func(t *testing.T) {
			code, _, errOut := runIn(t, cmd, "extra")
			if code != exitConfig || !strings.Contains(errOut, `unexpected argument "extra"`) {
				t.Errorf("got exit %d and %q, want 2 naming the argument", code, errOut)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runIn(t, args...)
			if code != exitOK || !strings.HasPrefix(out, "consumer dev (commit unknown, go") {
				t.Errorf("got exit %d and %q %q, want 0 and the version line", code, out, errOut)
			}
		})
	}
}

func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, _ := runIn(t, args...)
			if code != exitOK || !strings.HasPrefix(out, "usage: consumer [command]") || !strings.Contains(out, "--version") {
				t.Errorf("got exit %d and\n%s\nwant 0 and the usage", code, out)
			}
		})
	}
}
