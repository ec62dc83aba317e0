// Command switchboard serves Switchboard's HTTP/JSON API (serve), talks
// to a running server (set, get, resolve, explain, confirm, invalidate,
// delete, list, delete-matching, prune, partitions, config) and load-tests
// either (bench). Run "switchboard help" for the
// commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `usage: switchboard <command> [flags] [arguments]

Commands:
  serve        serve the HTTP/JSON API (127.0.0.1:7420, instance "default", in memory)
  set          store a route:            switchboard set telegram:bot_1:chat_1 -100123 --ttl 10m
  get          fetch a route:            switchboard get telegram:bot_1:chat_1
  resolve      resolve a reply route:    switchboard resolve telegram:bot_1:chat_1:42 --fallback -100123
  explain      why resolve answers what it does: switchboard explain telegram:bot_1:chat_1:42
  confirm      a reply was delivered:    switchboard confirm telegram:bot_1:chat_1 -100123
  invalidate   delivery failed:          switchboard invalidate telegram:bot_1:chat_1 -100123 --reason "403 bot removed"
  delete       delete a route:           switchboard delete telegram:bot_1:chat_1
  list         list routes:              switchboard list --bridge bot_1 --origin provided_fallback
  delete-matching  delete routes by filter: switchboard delete-matching --bridge bot_7 --dry-run
  prune        delete expired routes now
  partitions   show partitions:          switchboard partitions [INDEX]
  config       show the effective configuration of an instance
  bench        load-test an embedded Manager or a server: switchboard bench --duration 10s
  version      print the version

Client commands take --server (default http://127.0.0.1:7420), --instance
(default "default"), --token (or SWITCHBOARD_TOKEN) and -o text|json.
"switchboard <command> --help" describes a command.
`

// run runs the command line args and returns the exit code: 0 on success,
// 1 on failure, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = (&serveCmd{stderr: stderr, getenv: getenv}).run(ctx, rest)
	case "set", "get", "resolve", "explain", "confirm", "invalidate", "delete", "list", "delete-matching", "prune", "partitions", "config":
		err = (&clientCmd{name: cmd, stdout: stdout, stderr: stderr, getenv: getenv}).run(ctx, rest)
	case "bench":
		err = (&benchCmd{stdout: stdout, stderr: stderr, getenv: getenv}).run(ctx, rest)
	case "version", "--version":
		fmt.Fprintln(stdout, "switchboard", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var usageErr *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintln(stderr, "switchboard:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "switchboard:", err)
		return 1
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// version returns the module version the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + info.GoVersion
}
