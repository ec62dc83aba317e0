package switchboard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-go/switchboard"
	"github.com/switchboard-go/switchboard/storetest"
)

func ExampleManager_Set() {
	m, err := switchboard.New(switchboard.Config{PartitionCount: 8})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()

	key := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}
	route := switchboard.Route{ExternalRoomID: "-100123", ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}
	if err := m.Set(ctx, key, route, switchboard.WithTTL(10*time.Minute)); err != nil {
		panic(err)
	}
	rec, err := m.Get(ctx, key)
	if err != nil {
		panic(err)
	}
	fmt.Println(key, "->", rec.Route.ExternalRoomID, "fresh for", rec.ExpiresAt.Sub(rec.UpdatedAt))
	fmt.Println("partition", m.RoutePartition(key), "of", m.PartitionCount())
	// Output:
	// telegram:bot_1:chat_123 -> -100123 fresh for 10m0s
	// partition 2 of 8
}

func ExampleManager_Resolve() {
	m, err := switchboard.New(switchboard.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()
	key := switchboard.SessionKey{ChannelType: "slack", BridgeID: "T024BE7LD", RoomID: "C024BE91L"}
	fallback := switchboard.Route{ExternalRoomID: "C024BE91L"}

	// Nothing is known yet: the caller's fallback is used, and stored.
	res, err := m.Resolve(ctx, key, fallback)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ExternalRoomID, res.Source, res.FallbackReason)

	// Now the state answers.
	res, err = m.Resolve(ctx, key)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ExternalRoomID, res.Source, res.Fallback)

	// Without state or fallback there is no route.
	_, err = m.Resolve(ctx, switchboard.SessionKey{ChannelType: "slack", BridgeID: "T024BE7LD", RoomID: "C999"})
	fmt.Println(errors.Is(err, switchboard.ErrNoRoute))
	// Output:
	// C024BE91L provided_fallback miss
	// C024BE91L state_hit false
	// true
}

// A thread with no state of its own falls back to its room, in the same
// partition and the same atomic step, and keeps a copy.
func Example_threadFallback() {
	clock := storetest.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	m, err := switchboard.New(switchboard.Config{TTL: 30 * time.Minute}, switchboard.WithClock(clock.Now))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()
	room := switchboard.SessionKey{ChannelType: "discord", BridgeID: "guild_1", RoomID: "chan_9"}
	thread := room
	thread.ThreadID = "thread_42"

	if err := m.Set(ctx, room, switchboard.Route{ExternalRoomID: "chan_9"}); err != nil {
		panic(err)
	}
	res, _ := m.Resolve(ctx, thread)
	fmt.Println(res.Source, res.FallbackReason, res.ExternalRoomID)
	res, _ = m.Resolve(ctx, thread)
	fmt.Println(res.Source)

	// Half an hour later both records have expired; the caller's fallback
	// answers and the answer says the state was stale.
	clock.Advance(30 * time.Minute)
	res, _ = m.Resolve(ctx, thread, switchboard.Route{ExternalRoomID: "chan_9/thread_42"})
	fmt.Println(res.Source, res.FallbackReason, res.Stale, res.ExternalRoomID)
	// Output:
	// partition_fallback thread_scope_miss chan_9
	// state_hit
	// provided_fallback stale true chan_9/thread_42
}

func ExampleParseSessionKey() {
	key, err := switchboard.ParseSessionKey("matrix:bridge_1:!abc%3Amatrix.org:$event")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q %q\n", key.RoomID, key.ThreadID)
	fmt.Println(key.RoomScope())

	_, err = switchboard.ParseSessionKey("telegram:bot_1")
	fmt.Println(err)
	// Output:
	// "!abc:matrix.org" "$event"
	// matrix:bridge_1:!abc%3Amatrix.org
	// switchboard: invalid session key: "telegram:bot_1" has 2 components, want 3 or 4
}

func ExampleMergeConfig() {
	global := switchboard.Config{PartitionCount: 8, TTL: time.Hour}
	instance := switchboard.Config{TTL: 5 * time.Minute}
	cfg, err := switchboard.MergeConfig(global, instance)
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.PartitionCount, cfg.TTL, cfg.MaxEntriesPerPartition, cfg.PruneInterval)

	_, err = switchboard.MergeConfig(switchboard.Config{MaxEntriesPerPartition: -1})
	fmt.Println(err)
	// Output:
	// 8 5m0s 10000 30s
	// switchboard: invalid config: MaxEntriesPerPartition -1 must be between 1 and 1073741824 (layer 0)
}

func ExampleObserverFunc() {
	obs := switchboard.ObserverFunc(func(e switchboard.Event) {
		if e.Kind == switchboard.EventResolved {
			fmt.Println(e.Kind, e.Outcome, e.Source, e.FallbackReason)
		}
	})
	m, err := switchboard.New(switchboard.Config{}, switchboard.WithObserver(obs))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	key := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_1", ThreadID: "7"}
	_, _ = m.Resolve(context.Background(), key, switchboard.Route{ExternalRoomID: "-1001"})
	_, _ = m.Resolve(context.Background(), key)
	// Output:
	// resolved fallback provided_fallback miss
	// resolved hit state_hit
}
