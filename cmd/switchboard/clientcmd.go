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

// clientCommand is one client subcommand: its help, its arguments (min and
// max count), the flags of its own, and what it does.
type clientCommand struct {
	help     string
	min, max int
	flags    func(fs *flag.FlagSet, o *cmdOptions)
	run      func(c *clientRun) error
}

// cmdOptions holds the values of the subcommands' own flags.
type cmdOptions struct {
	ttl             time.Duration
	priority        int
	writer          string
	ifRevision      uint64
	ifAbsent        bool
	meta, fallbacks multi
	thread, reason  string
	filter          filterFlags
	dryRun, yes     bool
	limit           int
}

// filterFlags are the filter flags of list and delete-matching.
type filterFlags struct {
	channelType, bridgeID, roomID, threadID, scope, external, origin, writer string
	updatedBefore                                                            time.Duration
	invalidated                                                              bool
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.channelType, "channel-type", "", "only this channel type")
	fs.StringVar(&f.bridgeID, "bridge", "", "only this bridge id")
	fs.StringVar(&f.roomID, "room", "", "only this room id (exact)")
	fs.StringVar(&f.threadID, "thread", "", "only this thread id")
	fs.StringVar(&f.scope, "scope", "", "room or thread: only room keys or only thread keys")
	fs.StringVar(&f.external, "external-room", "", "only routes to this external room id")
	fs.StringVar(&f.origin, "origin", "", "only this origin: set, partition_fallback or provided_fallback")
	fs.StringVar(&f.writer, "writer", "", "only routes written with this writer label")
	fs.DurationVar(&f.updatedBefore, "older-than", 0, "only routes last written longer ago than this (such as 1h)")
	fs.BoolVar(&f.invalidated, "invalidated", false, "tombstones (invalidated routes) instead of valid ones")
}

func (f *filterFlags) filter(now time.Time) switchboard.Filter {
	out := switchboard.Filter{ChannelType: f.channelType, BridgeID: f.bridgeID, RoomID: f.roomID, ThreadID: f.threadID,
		Scope: switchboard.Scope(f.scope), ExternalRoomID: f.external, Origin: switchboard.Origin(f.origin),
		Writer: f.writer, Invalidated: f.invalidated}
	if f.updatedBefore > 0 {
		out.UpdatedBefore = now.Add(-f.updatedBefore)
	}
	return out
}

var clientCommands = map[string]*clientCommand{
	"set": {help: `usage: switchboard set [flags] SESSION_KEY EXTERNAL_ROOM_ID

Stores the route of a session key. --priority makes it win over writes of
lower priority while it is fresh; --if-revision and --if-absent make the
write conditional.

Example:
  switchboard set telegram:bot_1:chat_123 -100123 --ttl 10m --meta lang=de --priority 10 --writer inbound`,
		min: 2, max: 2, flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.DurationVar(&o.ttl, "ttl", 0, "freshness (default: the instance's TTL)")
			fs.Var(&o.meta, "meta", "KEY=VALUE route metadata (repeatable)")
			fs.StringVar(&o.thread, "thread-route", "", "the route's thread id (part of its delivery target)")
			fs.IntVar(&o.priority, "priority", 0, "write priority, -1000..1000")
			fs.StringVar(&o.writer, "writer", "", "writer label, such as inbound or cron")
			fs.Uint64Var(&o.ifRevision, "if-revision", 0, "store only if the key's fresh record has this revision")
			fs.BoolVar(&o.ifAbsent, "if-absent", false, "store only if the key has no fresh, valid record")
		}, run: runSet},
	"get": {help: `usage: switchboard get [flags] SESSION_KEY

Prints the fresh route of a session key with its provenance (exit 1 with
not_found, expired or invalidated).

Example:
  switchboard get -o json telegram:bot_1:chat_123`, min: 1, max: 1, run: runGet},
	"resolve": {help: `usage: switchboard resolve [flags] SESSION_KEY

Resolves where the reply for a session key goes: its state, its room's,
or the first --fallback (which is stored).

Example:
  switchboard resolve telegram:bot_1:chat_123:42 --fallback -100123`, min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.Var(&o.fallbacks, "fallback", "EXTERNAL_ROOM_ID to use when there is no state (repeatable, first usable wins)")
		}, run: runResolve},
	"explain": {help: `usage: switchboard explain [flags] SESSION_KEY

Shows what resolve would answer now, and every record and fallback it
would look at and why. Changes nothing.

Example:
  switchboard explain telegram:bot_1:chat_123:42 --fallback -100123`, min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.Var(&o.fallbacks, "fallback", "EXTERNAL_ROOM_ID of a fallback (repeatable)")
		}, run: runExplain},
	"confirm": {help: `usage: switchboard confirm [flags] SESSION_KEY EXTERNAL_ROOM_ID

Reports that a reply for the key was delivered to EXTERNAL_ROOM_ID (and
--thread-route): the route becomes confirmed and fresh again for its TTL.

Example:
  switchboard confirm telegram:bot_1:chat_123 -100123`, min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.StringVar(&o.thread, "thread-route", "", "the thread id the reply was delivered to")
		}, run: runConfirm},
	"invalidate": {help: `usage: switchboard invalidate [flags] SESSION_KEY EXTERNAL_ROOM_ID --reason REASON

Reports that delivering to EXTERNAL_ROOM_ID (and --thread-route) failed: the
route becomes a tombstone until it expires, and resolve goes past it.

Example:
  switchboard invalidate telegram:bot_1:chat_123 -100123 --reason "403 bot removed"`, min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			fs.StringVar(&o.thread, "thread-route", "", "the thread id delivery failed for")
			fs.StringVar(&o.reason, "reason", "", "why delivery failed (required)")
		}, run: runInvalidate},
	"delete": {help: `usage: switchboard delete [flags] SESSION_KEY

Deletes the record of a session key.

Example:
  switchboard delete telegram:bot_1:chat_123`, min: 1, max: 1, run: runDelete},
	"list": {help: `usage: switchboard list [flags]

Lists the fresh routes matching the filter flags, paging through all of
them (text: one line each; -o json: one JSON array).

Example:
  switchboard list --bridge bot_1 --origin provided_fallback --older-than 1h`, min: 0, max: 0,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			o.filter.register(fs)
			fs.IntVar(&o.limit, "page-size", 1000, "routes per request")
		}, run: runList},
	"delete-matching": {help: `usage: switchboard delete-matching [flags] (--dry-run | --yes)

Deletes the fresh routes matching the filter flags. --dry-run only says how
many would go and shows some; --yes deletes them. Without a filter flag
only --dry-run is allowed.

Example:
  switchboard delete-matching --bridge bot_7 --dry-run
  switchboard delete-matching --bridge bot_7 --yes`, min: 0, max: 0,
		flags: func(fs *flag.FlagSet, o *cmdOptions) {
			o.filter.register(fs)
			fs.BoolVar(&o.dryRun, "dry-run", false, "count and show, delete nothing")
			fs.BoolVar(&o.yes, "yes", false, "really delete")
		}, run: runDeleteMatching},
	"prune": {help: `usage: switchboard prune [flags]

Deletes every expired record now and prints how many.

Example:
  switchboard prune --instance support_bot`, run: runPrune},
	"partitions": {help: `usage: switchboard partitions [flags] [INDEX]

Shows every partition (or one): owner, availability, entries, capacity.

Example:
  switchboard partitions`, max: 1, run: runPartitions},
	"config": {help: `usage: switchboard config [flags]

Shows the effective session-manager configuration of an instance.

Example:
  switchboard config --instance support_bot -o json`, run: runConfig},
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

// clientRun is one client subcommand being run.
type clientRun struct {
	ctx  context.Context
	cl   *client.Client
	pos  []string
	opts cmdOptions
	out  *printer
	fs   *flag.FlagSet
}

func (c *clientCmd) run(ctx context.Context, args []string) error {
	cmd := clientCommands[c.name]
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprintf(c.stderr, "%s\n\nFlags:\n", cmd.help); fs.PrintDefaults() }
	serverURL := fs.String("server", "http://127.0.0.1:7420", "server URL (env SWITCHBOARD_SERVER)")
	instance := fs.String("instance", "default", "instance name")
	token := fs.String("token", "", "bearer token (env SWITCHBOARD_TOKEN)")
	output := fs.String("o", "text", "output: text or json")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	r := &clientRun{fs: fs}
	if cmd.flags != nil {
		cmd.flags(fs, &r.opts)
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
	if len(pos) < cmd.min || len(pos) > cmd.max {
		fs.Usage()
		return usagef("%s: wrong number of arguments: it takes %s, got %d", c.name, argCount(cmd.min, cmd.max), len(pos))
	}
	if r.cl, err = client.New(*serverURL, client.Options{Instance: *instance, Token: *token}); err != nil {
		return usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r.ctx, r.pos, r.out = ctx, pos, &printer{w: c.stdout, json: *output == "json"}
	return cmd.run(r)
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "1 argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// key parses the first argument; a bad key is a usage error.
func (r *clientRun) key() (switchboard.SessionKey, error) {
	k, err := switchboard.ParseSessionKey(r.pos[0])
	if err != nil {
		return k, usagef("%v", err)
	}
	return k, nil
}

// asUsage turns the library's input errors, found before anything was
// sent, into usage errors (exit 2).
func asUsage(err error) error {
	for _, s := range []error{switchboard.ErrInvalidSessionKey, switchboard.ErrInvalidRoute, switchboard.ErrInvalidTTL, switchboard.ErrInvalidOption} {
		var ce *client.Error
		if errors.Is(err, s) && !errors.As(err, &ce) {
			return usagef("%v", err)
		}
	}
	return err
}

func runSet(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	route := switchboard.Route{ExternalRoomID: r.pos[1], ThreadID: r.opts.thread}
	for _, kv := range r.opts.meta {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--meta %q: want KEY=VALUE", kv)
		}
		if route.Meta == nil {
			route.Meta = map[string]string{}
		}
		route.Meta[name] = value
	}
	var opts []switchboard.SetOption
	for name, opt := range map[string]switchboard.SetOption{
		"ttl": switchboard.WithTTL(r.opts.ttl), "priority": switchboard.WithPriority(r.opts.priority),
		"writer": switchboard.WithWriter(r.opts.writer), "if-revision": switchboard.IfRevision(r.opts.ifRevision),
		"if-absent": switchboard.IfAbsent(),
	} {
		if flagSet(r.fs, name) && (name != "if-absent" || r.opts.ifAbsent) {
			opts = append(opts, opt)
		}
	}
	if err := asUsage(r.cl.Set(r.ctx, k, route, opts...)); err != nil {
		return err
	}
	return r.out.print(map[string]any{"stored": k.String()}, fmt.Sprintf("stored %s -> %s", k, route.ExternalRoomID))
}

func recordText(k switchboard.SessionKey, rec switchboard.Record) string {
	s := fmt.Sprintf("%s -> %s (revision %d, %s", k, rec.Route.ExternalRoomID, rec.Revision, rec.Origin)
	if rec.Writer != "" {
		s += " by " + rec.Writer
	}
	if rec.Priority != 0 {
		s += fmt.Sprintf(", priority %d", rec.Priority)
	}
	if rec.Confirmed {
		s += ", confirmed"
	}
	if rec.Invalidated != "" {
		s += ", invalidated: " + rec.Invalidated
	}
	return s + fmt.Sprintf(", updated %s, expires %s)", rec.UpdatedAt.UTC().Format(time.RFC3339), rec.ExpiresAt.UTC().Format(time.RFC3339))
}

func runGet(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	e, err := r.cl.Lookup(r.ctx, k)
	if err != nil {
		return err
	}
	return r.out.print(wire.FromRecord(e.Record, e.Partition), recordText(k, e.Record))
}

func (r *clientRun) fallbacks() []switchboard.Route {
	var fbs []switchboard.Route
	for _, f := range r.opts.fallbacks {
		fbs = append(fbs, switchboard.Route{ExternalRoomID: f})
	}
	return fbs
}

func resolutionText(res switchboard.Resolution) string {
	text := fmt.Sprintf("%s -> %s (%s", res.SessionKey, res.ExternalRoomID, res.Source)
	if res.FallbackReason != "" {
		text += ", " + string(res.FallbackReason)
	}
	if res.Stale {
		text += ", stale"
	}
	text += ")"
	if res.Revision != 0 {
		text += fmt.Sprintf(" revision %d, origin %s", res.Revision, res.Origin)
		if res.Confirmed {
			text += ", confirmed"
		}
	}
	return text
}

func runResolve(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	res, err := r.cl.Resolve(r.ctx, k, r.fallbacks()...)
	if err != nil {
		return err
	}
	return r.out.print(wire.FromResolution(res), resolutionText(res))
}

func runExplain(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	ex, err := r.cl.Explain(r.ctx, k, r.fallbacks()...)
	if err != nil {
		return err
	}
	if r.out.json {
		return r.out.print(wire.FromExplanation(ex, 0), "")
	}
	var b strings.Builder
	for i, s := range ex.Steps {
		fmt.Fprintf(&b, "%d. %-8s %-8s %s", i+1, s.Role, s.Found, s.Key)
		if s.Record != nil {
			fmt.Fprintf(&b, " -> %s", s.Record.Route.ExternalRoomID)
		}
		fmt.Fprintf(&b, ": %s\n", s.Note)
	}
	if ex.Err != nil {
		fmt.Fprintf(&b, "resolve would answer: %v", ex.Err)
	} else {
		fmt.Fprintf(&b, "resolve would answer: %s", resolutionText(ex.Resolution))
	}
	return r.out.print(nil, b.String())
}

func runConfirm(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	rec, err := r.cl.Confirm(r.ctx, k, switchboard.Route{ExternalRoomID: r.pos[1], ThreadID: r.opts.thread})
	if err != nil {
		return asUsage(err)
	}
	return r.out.print(wire.FromRecord(rec, 0), "confirmed "+recordText(k, rec))
}

func runInvalidate(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	if r.opts.reason == "" {
		return usagef("invalidate needs --reason")
	}
	if err := asUsage(r.cl.Invalidate(r.ctx, k, switchboard.Route{ExternalRoomID: r.pos[1], ThreadID: r.opts.thread}, r.opts.reason)); err != nil {
		return err
	}
	return r.out.print(map[string]any{"invalidated": k.String()}, "invalidated "+k.String())
}

func runDelete(r *clientRun) error {
	k, err := r.key()
	if err != nil {
		return err
	}
	if err := r.cl.Delete(r.ctx, k); err != nil {
		return err
	}
	return r.out.print(map[string]any{"deleted": k.String()}, "deleted "+k.String())
}

func runList(r *clientRun) error {
	f := r.opts.filter.filter(time.Now())
	var all []wire.Record
	tw := tabwriter.NewWriter(r.out.w, 0, 0, 2, ' ', 0)
	if !r.out.json {
		fmt.Fprintln(tw, "SESSION KEY\tEXTERNAL ROOM\tORIGIN\tWRITER\tPRIO\tREV\tCONFIRMED\tEXPIRES")
	}
	cursor, n := "", 0
	for {
		entries, next, err := r.cl.List(r.ctx, f, r.opts.limit, cursor)
		if err != nil {
			return asUsage(err)
		}
		for _, e := range entries {
			n++
			if r.out.json {
				all = append(all, wire.FromEntry(e))
				continue
			}
			writer := e.Record.Writer
			if writer == "" {
				writer = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%v\t%s\n", e.Key, e.Record.Route.ExternalRoomID, e.Record.Origin, writer,
				e.Record.Priority, e.Record.Revision, e.Record.Confirmed, e.Record.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if r.out.json {
		if all == nil {
			all = []wire.Record{}
		}
		return r.out.print(all, "")
	}
	fmt.Fprintf(tw, "(%d routes)\n", n)
	return tw.Flush()
}

func runDeleteMatching(r *clientRun) error {
	if r.opts.dryRun == r.opts.yes {
		return usagef("delete-matching needs exactly one of --dry-run and --yes")
	}
	res, err := r.cl.DeleteMatching(r.ctx, r.opts.filter.filter(time.Now()), r.opts.dryRun)
	if err != nil {
		return asUsage(err)
	}
	body := wire.DeleteResult{Matched: res.Matched, Deleted: res.Deleted, Sample: []string{}}
	for _, k := range res.Sample {
		body.Sample = append(body.Sample, k.String())
	}
	text := fmt.Sprintf("deleted %d of %d matching route(s)", res.Deleted, res.Matched)
	if r.opts.dryRun {
		text = fmt.Sprintf("dry run: %d route(s) match; nothing was deleted (run again with --yes to delete them)", res.Matched)
	}
	if len(body.Sample) > 0 {
		text += "\nfor example:\n  " + strings.Join(body.Sample, "\n  ")
	}
	return r.out.print(body, text)
}

func runPrune(r *clientRun) error {
	res, err := r.cl.Prune(r.ctx)
	if err != nil {
		return err
	}
	return r.out.print(wire.PruneResult{Pruned: res.Pruned, Partitions: res.Partitions},
		fmt.Sprintf("pruned %d expired record(s) in %d partition(s)", res.Pruned, res.Partitions))
}

func runPartitions(r *clientRun) error {
	var sts []switchboard.PartitionStatus
	if len(r.pos) == 1 {
		i, err := strconv.Atoi(r.pos[0])
		if err != nil {
			return usagef("partition index %q is not a number", r.pos[0])
		}
		st, err := r.cl.PartitionStatus(r.ctx, i)
		if err != nil {
			return err
		}
		sts = append(sts, st)
	} else {
		var err error
		if sts, err = r.cl.Partitions(r.ctx); err != nil {
			return err
		}
	}
	if r.out.json {
		body := make([]wire.PartitionStatus, len(sts))
		for i, st := range sts {
			body[i] = wire.FromPartitionStatus(st)
		}
		return r.out.print(body, "")
	}
	tw := tabwriter.NewWriter(r.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tOWNER\tAVAILABLE\tENTRIES\tCAPACITY")
	for _, st := range sts {
		fmt.Fprintf(tw, "%d\t%s\t%v\t%d\t%d\n", st.Index, st.Owner, st.Available, st.Entries, st.Capacity)
	}
	return tw.Flush()
}

func runConfig(r *clientRun) error {
	cfg, err := r.cl.Config(r.ctx)
	if err != nil {
		return err
	}
	return r.out.print(wire.FromConfig(cfg),
		fmt.Sprintf("partition_count: %d\nttl: %v\nprovisional_ttl: %v\nmax_entries_per_partition: %d\nprune_interval: %v\ncapacity: %d routes",
			cfg.PartitionCount, cfg.TTL, cfg.EffectiveProvisionalTTL(), cfg.MaxEntriesPerPartition, cfg.PruneInterval,
			cfg.PartitionCount*cfg.MaxEntriesPerPartition))
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
