// Command quickstart simulates a messaging runtime routing replies with an
// embedded Switchboard Manager: inbound messages from Telegram and Slack,
// in rooms and threads, each answered by resolving where its reply goes.
// A simulated clock shows a TTL expiry and a small capacity shows an
// eviction, without waiting. Its second part is the loop that makes routes
// trustworthy: inbound writes at a priority a heartbeat cannot clobber, and
// resolve → send → confirm (or invalidate, when the platform refuses).
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/manualclock"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// step is one thing happening on a chat bridge.
type step struct {
	after time.Duration // simulated time since the previous step
	key   switchboard.SessionKey
	// route is, for a message, where the bridge says it came from (the
	// fallback for its reply; empty when the bridge does not know); for a
	// route change, the new route.
	route  switchboard.Route
	change bool // the bridge reports a route change instead of a message
	text   string
}

func run(w io.Writer) error {
	ctx := context.Background()
	clk := manualclock.New(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	obs := switchboard.ObserverFunc(func(e switchboard.Event) {
		if e.Kind == switchboard.EventEvicted {
			fmt.Fprintf(w, "       (partition %d over capacity: evicted its %d least recently written record(s))\n", e.Partition, e.Count)
		}
	})
	m, err := switchboard.New(switchboard.Config{
		PartitionCount:         2,
		TTL:                    15 * time.Minute,
		MaxEntriesPerPartition: 3, // tiny, to show an eviction
	}, switchboard.WithClock(clk.Now), switchboard.WithObserver(obs))
	if err != nil {
		return err
	}
	defer m.Close()

	tg := func(chat, thread string) switchboard.SessionKey {
		return switchboard.SessionKey{ChannelType: "telegram", BridgeID: "support_bot", RoomID: chat, ThreadID: thread}
	}
	slack := func(channel, ts string) switchboard.SessionKey {
		return switchboard.SessionKey{ChannelType: "slack", BridgeID: "T024BE7LD", RoomID: channel, ThreadID: ts}
	}
	origin := func(k switchboard.SessionKey, external string) switchboard.Route {
		return switchboard.Route{ExternalRoomID: external, ChannelType: k.ChannelType, BridgeID: k.BridgeID, RoomID: k.RoomID, ThreadID: k.ThreadID}
	}

	// For every message the runtime resolves where the reply goes, passing
	// the message's origin as the fallback; when a bridge reports that a
	// conversation moved, it sets the new route.
	script := []step{
		{0, tg("chat_100", ""), origin(tg("chat_100", ""), "-100100"), false, "hi, my order is late"},
		{time.Minute, tg("chat_100", "topic_7"), switchboard.Route{}, false, "(forum topic) any news?"},
		{time.Minute, tg("chat_100", ""), origin(tg("chat_100", ""), "-100999"), true, "chat upgraded to a supergroup"},
		{time.Minute, tg("chat_100", ""), origin(tg("chat_100", ""), "-100100"), false, "still there?"},
		{time.Minute, slack("C01", ""), origin(slack("C01", ""), "C01"), false, "deploy is red"},
		{time.Minute, slack("C01", "1764234000.000100"), switchboard.Route{}, false, "(thread) which job?"},
		{5 * time.Minute, slack("C01", "1764234000.000100"), switchboard.Route{}, false, "(thread) the e2e one"},
		{20 * time.Minute, slack("C01", "1764234000.000100"), origin(slack("C01", "1764234000.000100"), "C01/1764234000.000100"), false, "(thread, 20 min later) fixed?"},
		{time.Minute, tg("chat_200", ""), origin(tg("chat_200", ""), "-100200"), false, "new customer"},
		{time.Minute, tg("chat_300", ""), origin(tg("chat_300", ""), "-100300"), false, "another one"},
		{time.Minute, tg("chat_400", ""), origin(tg("chat_400", ""), "-100400"), false, "and another"},
		{time.Minute, slack("C02", ""), origin(slack("C02", ""), "C02"), false, "lunch?"},
		{time.Minute, slack("C02", "1764235800.000200"), switchboard.Route{}, false, "(thread) pizza"},
		{time.Minute, tg("chat_200", "5"), switchboard.Route{}, false, "(thread) where is my refund?"},
	}
	fmt.Fprintf(w, "%-6s %-38s %-22s %-18s %-19s %s\n", "time", "session key", "reply to", "source", "reason", "message")
	for _, st := range script {
		clk.Advance(st.after)
		at := clk.Now().Format("15:04")
		if st.change {
			if err := m.Set(ctx, st.key, st.route); err != nil {
				return err
			}
			fmt.Fprintf(w, "%-6s %-38s %-22s %-18s %-19s %s\n", at, st.key, st.route.ExternalRoomID, "set", "", st.text)
			continue
		}
		res, err := m.Resolve(ctx, st.key, st.route)
		switch {
		case errors.Is(err, switchboard.ErrNoRoute):
			fmt.Fprintf(w, "%-6s %-38s %-22s %-18s %-19s %s\n", at, st.key, "-", "ErrNoRoute", "", st.text)
			continue
		case err != nil:
			return err
		}
		reason := string(res.FallbackReason)
		if res.Stale && res.FallbackReason != switchboard.ReasonStale {
			reason += " (stale)"
		}
		fmt.Fprintf(w, "%-6s %-38s %-22s %-18s %-19s %s\n", at, st.key, res.ExternalRoomID, res.Source, reason, st.text)
	}

	// Where does each conversation stand now?
	fmt.Fprintln(w)
	for _, k := range []switchboard.SessionKey{tg("chat_100", ""), tg("chat_100", "topic_7"), slack("C01", ""), tg("chat_200", "5")} {
		rec, err := m.Get(ctx, k)
		switch {
		case errors.Is(err, switchboard.ErrNotFound), errors.Is(err, switchboard.ErrExpired):
			fmt.Fprintf(w, "%-38s no fresh route (%v)\n", k, err)
		case err != nil:
			return err
		default:
			fmt.Fprintf(w, "%-38s -> %s until %s\n", k, rec.Route.ExternalRoomID, rec.ExpiresAt.Format("15:04"))
		}
	}
	res, err := m.Prune(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nprune: %d expired record(s) removed from %d partitions\n", res.Pruned, res.Partitions)
	for p := range m.PartitionCount() {
		st, err := m.PartitionStatus(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "partition %d: %d/%d entries (%s)\n", st.Index, st.Entries, st.Capacity, st.Owner)
	}
	fmt.Fprintln(w)
	return trust(ctx, w, clk)
}

// platform stands for a chat platform's send API: it refuses chats the bot
// was removed from.
type platform struct{ removed map[string]bool }

func (p *platform) send(chat, text string) error {
	if p.removed[chat] {
		return fmt.Errorf("403 Forbidden: bot was kicked from %s", chat)
	}
	return nil
}

// trust shows the loop that keeps routes honest: inbound messages write the
// route at priority 10, so a heartbeat (priority 0) cannot clobber it while
// it is fresh; every reply is resolve → send → Confirm, or Invalidate when
// the platform refuses, after which Resolve never hands out that target
// again until it is written anew. Guessed routes are provisional: they
// expire after 2 minutes unless a delivery confirms them.
func trust(ctx context.Context, w io.Writer, clk *manualclock.Clock) error {
	m, err := switchboard.New(switchboard.Config{TTL: 30 * time.Minute, ProvisionalTTL: 2 * time.Minute},
		switchboard.WithClock(clk.Now))
	if err != nil {
		return err
	}
	defer m.Close()
	tg := platform{removed: map[string]bool{}}
	dm := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "support_bot", RoomID: "user_42"}
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "%s  "+format+"\n", append([]any{clk.Now().Format("15:04")}, args...)...)
	}

	// An inbound message from the user's private chat: the route that matters.
	if err := m.Set(ctx, dm, switchboard.Route{ExternalRoomID: "dm-42"}, switchboard.WithPriority(10), switchboard.WithWriter("inbound")); err != nil {
		return err
	}
	say("inbound  %s -> dm-42 (priority 10)", dm)
	// A heartbeat turn that runs in the team group tries to take the route.
	err = m.Set(ctx, dm, switchboard.Route{ExternalRoomID: "group-7"}, switchboard.WithWriter("heartbeat"))
	if !errors.Is(err, switchboard.ErrSuperseded) {
		return fmt.Errorf("a heartbeat clobbered the user's route: %v", err)
	}
	say("heartbeat refused: %v", err)
	reply := func(text string, fallbacks ...switchboard.Route) error {
		res, err := m.Resolve(ctx, dm, fallbacks...)
		if err != nil {
			say("reply %q: %v", text, err)
			return nil
		}
		if err := tg.send(res.ExternalRoomID, text); err != nil {
			say("reply %q to %s failed: %v", text, res.ExternalRoomID, err)
			return m.Invalidate(ctx, dm, res.Route, err.Error())
		}
		rec, err := m.Confirm(ctx, dm, res.Route)
		if err != nil {
			return err
		}
		say("reply %q to %s (%s, origin %s, revision %d, confirmed until %s)", text, res.ExternalRoomID, res.Source, res.Origin, rec.Revision, rec.ExpiresAt.Format("15:04"))
		return nil
	}
	if err := reply("your order shipped"); err != nil {
		return err
	}
	// The user removes the bot; the next reply is refused and the route
	// becomes a tombstone, so the one after takes the caller's fallback
	// (the support group) instead of the dead chat.
	clk.Advance(10 * time.Minute)
	tg.removed["dm-42"] = true
	if err := reply("anything else?"); err != nil {
		return err
	}
	if err := reply("we moved your ticket", switchboard.Route{ExternalRoomID: "dm-42"}, switchboard.Route{ExternalRoomID: "support-group"}); err != nil {
		return err
	}
	ex, err := m.Explain(ctx, dm)
	if err != nil {
		return err
	}
	say("explain %s: %s (%s)", dm, ex.Steps[0].Found, ex.Steps[0].Note)
	return nil
}
