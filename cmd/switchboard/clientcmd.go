package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/client"
	"github.com/switchboard-go/switchboard/internal/wire"
)

var clientHelp = map[string]string{
	"set": `usage: switchboard set [flags] SESSION_KEY EXTERNAL_ROOM_ID

Stores the route of a session key.

Example:
  switchboard set telegram:bot_1:chat_123 -100123 --ttl 10m --meta lang=de`,
	"get": `usage: switchboard get [flags] SESSION_KEY

Prints the fresh route of a session key (exit 1 with not_found or expired).

Example:
  switchboard get -o json telegram:bot_1:chat_123`,
	"resolve": `usage: switchboard resolve [flags] SESSION_KEY

Resolves where the reply for a session key goes: its state, its room's,
or the first --fallback (which is stored).

Example:
  switchboard resolve telegram:bot_1:chat_123:42 --fallback -100123`,
	"delete": `usage: switchboard delete [flags] SESSION_KEY

Deletes the record of a session key.

Example:
  switchboard delete telegram:bot_1:chat_123`,
	"prune": `usage: switchboard prune [flags]

Deletes every expired record now and prints how many.

Example:
  switchboard prune --instance support_bot`,
	"partitions": `usage: switchboard partitions [flags] [INDEX]

Shows every partition (or one): owner, availability, entries, capacity.

Example:
  switchboard partitions`,
	"config": `usage: switchboard config [flags]

Shows the effective session-manager configuration of an instance.

Example:
  switchboard config --instance support_bot -o json`,
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type clientCmd struct {
	name   string
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func (c *clientCmd) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprintf(c.stderr, "%s\n\nFlags:\n", clientHelp[c.name]); fs.PrintDefaults() }
	serverURL := fs.String("server", "http://127.0.0.1:7420", "server URL (env SWITCHBOARD_SERVER)")
	instance := fs.String("instance", "default", "instance name")
	token := fs.String("token", "", "bearer token (env SWITCHBOARD_TOKEN)")
	output := fs.String("o", "text", "output: text or json")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	var ttl time.Duration
	var meta, fallbacks multi
	if c.name == "set" {
		fs.DurationVar(&ttl, "ttl", 0, "freshness (default: the instance's TTL)")
		fs.Var(&meta, "meta", "KEY=VALUE route metadata (repeatable)")
	}
	if c.name == "resolve" {
		fs.Var(&fallbacks, "fallback", "EXTERNAL_ROOM_ID to use when there is no state (repeatable, first valid wins)")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	if v := c.getenv("SWITCHBOARD_SERVER"); v != "" && !flagSet(fs, "server") {
		*serverURL = v
	}
	if *token == "" {
		*token = c.getenv("SWITCHBOARD_TOKEN")
	}
	cl, err := client.New(*serverURL, client.Options{Instance: *instance, Token: *token})
	if err != nil {
		return usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	want := map[string][2]int{"set": {2, 2}, "get": {1, 1}, "resolve": {1, 1}, "delete": {1, 1}, "prune": {0, 0}, "partitions": {0, 1}, "config": {0, 0}}[c.name]
	if len(pos) < want[0] || len(pos) > want[1] {
		fs.Usage()
		return usagef("%s: wrong number of arguments", c.name)
	}
	key := func() (switchboard.SessionKey, error) {
		k, err := switchboard.ParseSessionKey(pos[0])
		if err != nil {
			return k, usagef("%v", err)
		}
		return k, nil
	}
	out := &printer{w: c.stdout, json: *output == "json"}
	switch c.name {
	case "set":
		k, err := key()
		if err != nil {
			return err
		}
		r := switchboard.Route{ExternalRoomID: pos[1]}
		for _, kv := range meta {
			name, value, ok := strings.Cut(kv, "=")
			if !ok {
				return usagef("--meta %q: want KEY=VALUE", kv)
			}
			if r.Meta == nil {
				r.Meta = map[string]string{}
			}
			r.Meta[name] = value
		}
		var opts []switchboard.SetOption
		if flagSet(fs, "ttl") {
			opts = append(opts, switchboard.WithTTL(ttl))
		}
		if err := cl.Set(ctx, k, r, opts...); err != nil {
			return err
		}
		return out.print(map[string]any{"stored": k.String()}, fmt.Sprintf("stored %s -> %s", k, r.ExternalRoomID))
	case "get":
		k, err := key()
		if err != nil {
			return err
		}
		rec, err := cl.Get(ctx, k)
		if err != nil {
			return err
		}
		return out.print(map[string]any{"route": rec.Route, "updated_at_ms": rec.UpdatedAt.UnixMilli(), "expires_at_ms": rec.ExpiresAt.UnixMilli()},
			fmt.Sprintf("%s -> %s (updated %s, expires %s)", k, rec.Route.ExternalRoomID,
				rec.UpdatedAt.UTC().Format(time.RFC3339), rec.ExpiresAt.UTC().Format(time.RFC3339)))
	case "resolve":
		k, err := key()
		if err != nil {
			return err
		}
		var fbs []switchboard.Route
		for _, f := range fallbacks {
			fbs = append(fbs, switchboard.Route{ExternalRoomID: f})
		}
		res, err := cl.Resolve(ctx, k, fbs...)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("%s -> %s (%s", k, res.ExternalRoomID, res.Source)
		if res.FallbackReason != "" {
			text += ", " + string(res.FallbackReason)
		}
		if res.Stale {
			text += ", stale"
		}
		return out.print(wire.FromResolution(res), text+")")
	case "delete":
		k, err := key()
		if err != nil {
			return err
		}
		if err := cl.Delete(ctx, k); err != nil {
			return err
		}
		return out.print(map[string]any{"deleted": k.String()}, "deleted "+k.String())
	case "prune":
		res, err := cl.Prune(ctx)
		if err != nil {
			return err
		}
		return out.print(wire.PruneResult{Pruned: res.Pruned, Partitions: res.Partitions},
			fmt.Sprintf("pruned %d expired record(s) in %d partition(s)", res.Pruned, res.Partitions))
	case "partitions":
		var sts []switchboard.PartitionStatus
		if len(pos) == 1 {
			i, err := strconv.Atoi(pos[0])
			if err != nil {
				return usagef("partition index %q is not a number", pos[0])
			}
			st, err := cl.PartitionStatus(ctx, i)
			if err != nil {
				return err
			}
			sts = append(sts, st)
		} else if sts, err = cl.Partitions(ctx); err != nil {
			return err
		}
		if out.json {
			body := make([]wire.PartitionStatus, len(sts))
			for i, st := range sts {
				body[i] = wire.FromPartitionStatus(st)
			}
			return out.print(body, "")
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INDEX\tOWNER\tAVAILABLE\tENTRIES\tCAPACITY")
		for _, st := range sts {
			fmt.Fprintf(tw, "%d\t%s\t%v\t%d\t%d\n", st.Index, st.Owner, st.Available, st.Entries, st.Capacity)
		}
		return tw.Flush()
	case "config":
		cfg, err := cl.Config(ctx)
		if err != nil {
			return err
		}
		return out.print(wire.FromConfig(cfg),
			fmt.Sprintf("partition_count: %d\nttl: %v\nmax_entries_per_partition: %d\nprune_interval: %v",
				cfg.PartitionCount, cfg.TTL, cfg.MaxEntriesPerPartition, cfg.PruneInterval))
	}
	return errors.New("unreachable")
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments, and returns the positional ones. A negative number
// (a Telegram chat id such as -100123) is an argument, not a flag, unless
// it is the value of the flag before it.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		// The next chunk ends before the first negative number that is not
		// a flag's value.
		n := len(args)
		for i, a := range args {
			if isNegativeNumber(a) && (i == 0 || !takesValue(fs, args[i-1])) {
				n = i
				break
			}
		}
		if err := fs.Parse(args[:n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) > 0 && rest[0] == "--" {
			return append(append(pos, rest[1:]...), args[n:]...), nil
		}
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			args = append(rest[1:], args[n:]...)
			continue
		}
		if n < len(args) {
			pos = append(pos, args[n])
			n++
		}
		args = args[n:]
	}
	return pos, nil
}

func isNegativeNumber(s string) bool {
	return len(s) > 1 && s[0] == '-' && s[1] >= '0' && s[1] <= '9'
}

// takesValue reports whether arg is a flag that consumes the next argument.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if !strings.HasPrefix(arg, "-") || name == "" || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

type printer struct {
	w    io.Writer
	json bool
}

func (p *printer) print(v any, text string) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintln(p.w, text)
	return err
}
